"""GraphQL types for partner card services: what a partner may see of a card, and its permissions."""

from __future__ import annotations

import strawberry

from app.ops.cards.lookup import CardView
from app.ops.cards.services import ChangeResult, Permission


@strawberry.type(
    description="A social security card as a partner may see it: its states and masked numbers. Never a "
    "full ID number, bank card number or PIN."
)
class CardStatus:
    card_number: str = strawberry.field(description="The card number (卡号), 9 characters.")
    card_serial: str = strawberry.field(
        description="The card identification code (卡识别码), unique nationally."
    )
    issuing_tenant: str = strawberry.field(
        description="Path of the HRSS department that issued the card, e.g. cn/440000/440100/440106."
    )
    service_bank: str = strawberry.field(description="The card's service bank code, e.g. 102 for ICBC.")
    status: str = strawberry.field(
        description="normal, temp_loss, formal_loss, app_locked, cancelled or sealed."
    )
    social_function: str = strawberry.field(
        description="Whether the social-security function is switched on: not_enabled or enabled."
    )
    activation_channel: str | None = strawberry.field(
        description="How the social function was switched on (e.g. hospital_first_use); empty until then."
    )
    pin_state: str = strawberry.field(
        description="default (the issuing PIN, never changed), set (the holder chose one) or locked "
        "(too many wrong PINs: reset or unlock it). The PIN itself is never shown."
    )
    financial_function: str | None = strawberry.field(
        description="The bank account as last reported by the service bank: active, loss_reported or "
        "cancelled; empty if never reported."
    )
    id_number_masked: str = strawberry.field(
        description="The holder's ID number, masked: 4401**********123X."
    )
    bank_card_masked: str | None = strawberry.field(
        description="The bank card number, masked: 621226*********0128."
    )

    @classmethod
    def from_view(cls, view: CardView) -> CardStatus:
        return cls(**{name: getattr(view, name) for name in CardView.__dataclass_fields__})


@strawberry.type(
    description="One card service your outlet may perform now, on whose cards, and which grants allow it."
)
class CardServicePermission:
    service: str = strawberry.field(description="The card service, e.g. activation or password_reset.")
    tenants: list[str] = strawberry.field(
        description="The departments whose cards this covers, top-most first: your own and those above it "
        "that allow it (each with the departments below it, unless one of them blocks you). Financial "
        "services cover only cards of your own bank."
    )
    grant_ids: list[str] = strawberry.field(
        description="Every grant that allows it, once; builtin:... names a statutory allowance that needs "
        "no grant."
    )

    @classmethod
    def from_permission(cls, permission: Permission) -> CardServicePermission:
        return cls(
            service=permission.service, tenants=list(permission.tenants), grant_ids=list(permission.grant_ids)
        )


@strawberry.type(description="The card after a card service was performed.")
class CardServicePayload:
    card: CardStatus = strawberry.field(description="The card as it now is.")
    replayed: bool = strawberry.field(
        description="True when this answers a retry: the idempotency key was seen before with the same "
        "input, and nothing was done again."
    )

    @classmethod
    def from_result(cls, result: ChangeResult) -> CardServicePayload:
        return cls(card=CardStatus.from_view(result.card), replayed=result.replayed)
