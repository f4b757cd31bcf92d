"""Grant and ceiling queries; authorization and filtering happen in app/ops/grants/admin.py."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.graphql.pagination import Connection, build_connection, decode_cursor, page_size
from app.graphql.types.ceiling import DepartmentCeilings
from app.graphql.types.grant import Grant, GrantState
from app.ops.grants import admin as grant_admin
from app.ops.grants import ceilings


@strawberry.type
class GrantQueries:
    @strawberry.field(
        description="Grants made by departments in your area (or below `tenant`), oldest first. "
        "Filters combine: `outlet` also finds grants to that outlet's kind made by its department or "
        "one above it; `activeAt` keeps active grants whose window holds at that time."
    )
    async def grants(
        self,
        info: strawberry.Info,
        tenant: str | None = None,
        outlet: str | None = None,
        service: str | None = None,
        state: GrantState | None = None,
        active_at: datetime | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Grant]:
        size = page_size(first)
        rows, total = await info.context.read(
            grant_admin.list_grants,
            grant_admin.GrantFilter(
                tenant=tenant,
                outlet=outlet,
                service=service,
                state=state.value if state else None,
                active_at=active_at,
            ),
            after=decode_cursor(after),
            limit=size,
        )
        return build_connection(rows, size, total, key=lambda v: str(v.grant.id), node=Grant.from_view)

    @strawberry.field(description="One grant by its number; empty if there is none.")
    async def grant(self, info: strawberry.Info, id: strawberry.ID) -> Grant | None:
        view = await info.context.read(grant_admin.get_grant, str(id))
        return Grant.from_view(view) if view else None

    @strawberry.field(
        description="The ceilings a department set for those below it, and what it may grant itself "
        "to each outlet kind."
    )
    async def ceilings(self, info: strawberry.Info, tenant: str) -> DepartmentCeilings:
        view = await info.context.read(ceilings.tenant_ceilings, tenant)
        return DepartmentCeilings.from_view(view)
