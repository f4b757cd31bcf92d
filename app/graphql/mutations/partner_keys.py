"""Partner key mutations: administrators create and revoke the API keys outlets' systems call in with."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.graphql.types.partner_key import PartnerKey
from app.ops.partner_keys import admin as partner_keys


@strawberry.input(description="A new API key for one outlet's system.")
class CreatePartnerKeyInput:
    outlet_id: str = strawberry.field(description="The open outlet the key acts as.")
    days: int = strawberry.field(default=365, description="Days until the key stops working (1-731).")
    rate_limit: str | None = strawberry.field(
        default=None,
        description="Calls the key may make, e.g. 50/second or 3000/minute; leave it out for the "
        "platform's default.",
    )


@strawberry.input(description="Revoking a key for good: name it by its id or by its prefix.")
class RevokePartnerKeyInput:
    id: int | None = strawberry.field(default=None, description="The key's number.")
    prefix: str | None = strawberry.field(
        default=None, description="The key's first 15 characters, as shown when it was created."
    )
    reason: str = strawberry.field(description="Why (up to 512 characters); kept in the audit trail.")


@strawberry.type(description="The new key. Store `key` now: it is not kept and cannot be shown again.")
class CreatePartnerKeyPayload:
    key: str = strawberry.field(description="The API key to send as X-Api-Key; shown this once only.")
    prefix: str = strawberry.field(description="Its first 15 characters, to recognise it later.")
    expires_at: datetime = strawberry.field(description="When it stops working by itself.")
    partner_key: PartnerKey = strawberry.field(description="The key as administrators will see it.")


@strawberry.type(description="The revoked key.")
class RevokePartnerKeyPayload:
    partner_key: PartnerKey = strawberry.field(
        description="The key, now revoked: every worker refuses it within one second."
    )


@strawberry.type
class PartnerKeyMutations:
    @strawberry.mutation(description="Create an API key for an outlet of one of your departments.")
    async def create_partner_key(
        self, info: strawberry.Info, input: CreatePartnerKeyInput
    ) -> CreatePartnerKeyPayload:
        issued = await info.context.run(
            partner_keys.issue_partner_key,
            input.outlet_id,
            days=input.days,
            rate_limit=input.rate_limit,
            max_rate_limit=info.context.settings.partner_rate_limit_max,
            max_keys=info.context.settings.partner_max_keys_per_outlet,
        )
        return CreatePartnerKeyPayload(
            key=issued.key,
            prefix=issued.prefix,
            expires_at=issued.expires_at,
            partner_key=PartnerKey.from_view(issued.view),
        )

    @strawberry.mutation(
        description="Revoke an API key of an outlet of one of your departments; calls with it are refused "
        "(UNAUTHENTICATED) within one second."
    )
    async def revoke_partner_key(
        self, info: strawberry.Info, input: RevokePartnerKeyInput
    ) -> RevokePartnerKeyPayload:
        view = await info.context.run(
            partner_keys.revoke_partner_key,
            key_id=input.id,
            prefix=input.prefix,
            reason=input.reason,
        )
        return RevokePartnerKeyPayload(partner_key=PartnerKey.from_view(view))
