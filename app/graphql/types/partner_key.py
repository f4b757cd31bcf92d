"""GraphQL types for partner API keys (as administrators see them) and the caller a key proves."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry

from app.graphql.types.revision import revision_text
from app.ops.auth import PartnerCaller
from app.ops.partner_keys.keys import KeyView


@strawberry.type(
    description="An API key a partner system (bank core, hospital or pharmacy system, terminal, the 12333 "
    "desk) sends as X-Api-Key to act as one outlet. The key itself is shown only when it is created."
)
class PartnerKey:
    id: int = strawberry.field(description="The key's number; name it to revoke the key.")
    outlet_id: str = strawberry.field(description="The outlet the key acts as.")
    tenant_path: str = strawberry.field(description="Path of the department the outlet belongs to.")
    prefix: str = strawberry.field(
        description="The key's first 15 characters (ssc_pk_ and 8 more), to recognise it in your systems."
    )
    rate_limit: str | None = strawberry.field(
        description="Calls the key may make, e.g. 50/second; empty means the platform's default."
    )
    expires_at: datetime | None = strawberry.field(description="When the key stops working by itself.")
    revoked_at: datetime | None = strawberry.field(description="When the key was revoked, if it was.")
    created_at: datetime = strawberry.field(description="When the key was created.")

    @strawberry.field(description="active, expired or revoked.")
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= datetime.now(UTC):
            return "expired"
        return "active"

    @classmethod
    def from_view(cls, view: KeyView) -> PartnerKey:
        row = view.row
        return cls(
            id=row.id,
            outlet_id=row.outlet_id,
            tenant_path=view.tenant_path,
            prefix=row.prefix,
            rate_limit=row.rate_limit,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            created_at=row.created_at,
        )


@strawberry.type(description="The outlet your X-Api-Key acts as, to check a key before going live.")
class PartnerIdentity:
    outlet_id: str = strawberry.field(description="The outlet's code.")
    kind: str = strawberry.field(
        description="The outlet's kind: hrss_hall, grassroots_platform, bank_outlet, designated_hospital, "
        "designated_pharmacy, self_service_terminal or hotline."
    )
    tenant_path: str = strawberry.field(description="Path of the department the outlet belongs to.")
    bank_code: str | None = strawberry.field(description="For a bank outlet: its bank's code.")
    rate_limit: str | None = strawberry.field(
        description="The key's own call limit, e.g. 50/second; empty means the platform's default."
    )

    @strawberry.field(description="The policy revision the worker answering you has applied.")
    def revision(self, info: strawberry.Info) -> str:
        return revision_text(info.context.policy.revision)

    @classmethod
    def from_caller(cls, caller: PartnerCaller) -> PartnerIdentity:
        return cls(
            outlet_id=caller.outlet_id,
            kind=caller.outlet_kind,
            tenant_path=caller.tenant_path,
            bank_code=caller.bank_code,
            rate_limit=caller.rate_limit,
        )
