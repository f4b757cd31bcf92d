"""Partner key queries: `partnerWhoAmI` lets an integrator check a key (and its rate limit) end to end."""

from __future__ import annotations

import strawberry

from app.graphql.types.partner_key import PartnerIdentity


@strawberry.type
class PartnerKeyQueries:
    @strawberry.field(
        description="The outlet your X-Api-Key acts as. UNAUTHENTICATED for a missing, unknown, expired or "
        "revoked key or a key of a closed outlet; counts against the key's rate limit like any partner call "
        "(RATE_LIMITED with extensions.retryAfter in seconds)."
    )
    async def partner_who_am_i(self, info: strawberry.Info) -> PartnerIdentity:
        caller = await info.context.partner_call()
        return PartnerIdentity.from_caller(caller)
