"""GraphQL type for a grant: a department lets one outlet (or every outlet of a kind) perform one
card service, for a validity window, under an approving document."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import Enum

import strawberry
from strawberry.dataloader import DataLoader

from app.graphql.dataloaders.registry import request_loader
from app.ops.grants import views as grant_views
from app.ops.grants.views import GrantView
from app.store.tables import Grant as GrantRow


@strawberry.enum(description="Where a grant stands.")
class GrantState(Enum):
    proposed = strawberry.enum_value(
        "proposed", description="Waiting for a second person's approval; not in force yet."
    )
    active = strawberry.enum_value("active", description="In force during its validity window.")
    suspended = strawberry.enum_value(
        "suspended", description="Paused, by a person or because a ceiling shrank; can be resumed."
    )
    revoked = strawberry.enum_value("revoked", description="Ended for good.")
    expired = strawberry.enum_value("expired", description="Its validity window has ended.")
    rejected = strawberry.enum_value(
        "rejected", description="A proposal that was turned down (or no longer fits a ceiling)."
    )


def _names_loader(context) -> DataLoader[int, str | None]:
    async def load(ids: list[int]) -> list[str | None]:
        names = await grant_views.principal_names(context.sessions, ids)
        return [names.get(i) for i in ids]

    return request_loader(context, "principal_names", lambda: DataLoader(load_fn=load))


async def _name(
    info: strawberry.Info, principal_id: int | None, names: Mapping[int, str] | None
) -> str | None:
    if principal_id is None:
        return None
    if names is not None and principal_id in names:
        return names[principal_id]
    return await _names_loader(info.context).load(principal_id)


@strawberry.type(
    description="A department's permission for one outlet, or for every outlet of one kind in its area, "
    "to perform one card service on cards of that area."
)
class Grant:
    id: strawberry.ID = strawberry.field(description="The grant's number.")
    tenant: str = strawberry.field(description="Path of the department that made the grant.")
    outlet_id: str | None = strawberry.field(
        description="The outlet the grant is for; empty when it is for every outlet of a kind."
    )
    outlet_kind: str | None = strawberry.field(
        description="The outlet kind the grant is for (every outlet of that kind in the department's "
        "area); empty when it is for one outlet."
    )
    service: str = strawberry.field(description="The card service granted, e.g. password_reset.")
    valid_from: datetime = strawberry.field(description="When the grant starts to apply.")
    valid_until: datetime | None = strawberry.field(
        description="When it stops applying (exclusive); empty means until revoked."
    )
    document_ref: str = strawberry.field(description="Reference number of the approving document (文号).")
    reason: str | None = strawberry.field(description="Why the grant was made, as written by its proposer.")
    state: GrantState = strawberry.field(
        description="Proposed, active, suspended, revoked, expired or rejected."
    )
    state_reason: str | None = strawberry.field(
        description="Why it is in its current state, e.g. which ceiling suspended it."
    )
    version: int = strawberry.field(
        description="Changes with every update; pass it as expectedVersion when changing the grant."
    )
    created_at: datetime = strawberry.field(description="When the grant was made.")
    updated_at: datetime = strawberry.field(description="When it last changed.")
    proposed_by_id: strawberry.Private[int | None]
    approved_by_id: strawberry.Private[int | None]
    names: strawberry.Private[Mapping[int, str] | None]

    @strawberry.field(description="Login name of the person who made (or proposed) the grant.")
    async def proposed_by(self, info: strawberry.Info) -> str | None:
        return await _name(info, self.proposed_by_id, self.names)

    @strawberry.field(description="Login name of the person who approved it; empty without approval.")
    async def approved_by(self, info: strawberry.Info) -> str | None:
        return await _name(info, self.approved_by_id, self.names)

    @classmethod
    def from_row(cls, row: GrantRow, tenant_path: str, names: Mapping[int, str] | None = None) -> Grant:
        """`names` (principal id -> login name) may carry the people's names when already loaded;
        otherwise they are looked up in one batch per request."""
        return cls(
            id=strawberry.ID(str(row.id)),
            tenant=tenant_path,
            outlet_id=row.outlet_id,
            outlet_kind=row.outlet_kind,
            service=row.service,
            valid_from=row.valid_from,
            valid_until=row.valid_until,
            document_ref=row.document_ref,
            reason=row.reason,
            state=GrantState(row.state),
            state_reason=row.state_reason,
            version=row.version,
            created_at=row.created_at,
            updated_at=row.updated_at,
            proposed_by_id=row.proposed_by,
            approved_by_id=row.approved_by,
            names=names,
        )

    @classmethod
    def from_view(cls, view: GrantView) -> Grant:
        row = view.grant
        names = {
            pid: name
            for pid, name in ((row.proposed_by, view.proposed_by), (row.approved_by, view.approved_by))
            if pid is not None and name is not None
        }
        return cls.from_row(row, view.tenant_path, names)
