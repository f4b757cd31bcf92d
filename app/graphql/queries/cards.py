"""Partner queries: a card's status and the calling outlet's permissions. Rules live in app/ops."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.graphql.types.card import CardServicePermission, CardStatus
from app.ops.cards import services as card_services
from app.ops.cards.audit import CallInfo
from app.ops.cards.lookup import Presented


def _arg(description: str):
    return strawberry.argument(description=description)


@strawberry.type
class CardQueries:
    @strawberry.field(
        description="For partner systems (X-Api-Key). A card's status, found by the holder's ID number and "
        "card number. NOT_FOUND when they match no card or when your outlet holds no card service on "
        "cards of the card's department (the two look the same); FORBIDDEN with extensions.reason when "
        "your outlet may not perform `purpose` on this card. Every call is audited."
    )
    async def card_status(
        self,
        info: strawberry.Info,
        card_number: Annotated[str, _arg("The card number (卡号) printed on the card.")],
        id_number: Annotated[str, _arg("The holder's 18-character resident ID number.")],
        purpose: Annotated[
            str,
            _arg("The card service you are about to perform, which your outlet must hold for this card."),
        ] = "info_inquiry",
    ) -> CardStatus:
        caller = await info.context.partner_call()
        presented = Presented.parse(id_number, card_number=card_number)
        view = await card_services.card_status(
            info.context.cards,
            info.context.business,
            CallInfo(caller, info.context.request_id),
            presented,
            purpose,
        )
        return CardStatus.from_view(view)

    @strawberry.field(
        description="For partner systems (X-Api-Key). The card services your outlet may perform now, on "
        "cards of its own department and of each department above it, with the grants behind each."
    )
    async def my_permissions(self, info: strawberry.Info) -> list[CardServicePermission]:
        caller = await info.context.partner_call()
        found = card_services.my_permissions(info.context.business, caller)
        return [CardServicePermission.from_permission(p) for p in found]
