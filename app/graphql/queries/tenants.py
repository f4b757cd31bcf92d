"""Read queries. Each resolver authenticates the caller and delegates to a use case in app/ops."""

from __future__ import annotations

import strawberry

from app.graphql.pagination import Connection, build_connection, decode_cursor, page_size
from app.graphql.types.me import Me, RoleAssignment
from app.graphql.types.tenant import Tenant
from app.ops.tenants import admin as tenant_queries


@strawberry.type
class TenantQueries:
    @strawberry.field(description="You, and the roles you hold.")
    async def me(self, info: strawberry.Info) -> Me:
        actor = await info.context.actor()
        return Me(
            name=actor.name, roles=[RoleAssignment(role=r, tenant_path=p) for r, p in actor.assignments]
        )

    @strawberry.field(
        description="Departments in path order: those below `under` (itself included), or all you may read."
    )
    async def tenants(
        self,
        info: strawberry.Info,
        under: str | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Tenant]:
        size = page_size(first)
        rows, total = await info.context.read(
            tenant_queries.list_tenants, under=under, after=decode_cursor(after), limit=size
        )
        return build_connection(rows, size, total, key=lambda t: t.path, node=Tenant.from_row)

    @strawberry.field(
        description="One department by its path, e.g. cn/440000/440100; empty if there is none."
    )
    async def tenant(self, info: strawberry.Info, path: str) -> Tenant | None:
        row = await info.context.read(tenant_queries.get_tenant, path)
        return Tenant.from_row(row) if row else None
