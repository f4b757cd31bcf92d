"""Read queries."""

from __future__ import annotations

import strawberry

from app.domain.errors import DomainError
from app.graphql.errors import bad_input
from app.graphql.types.tenant import Tenant
from app.ops import tenant_queries


@strawberry.type(description="What administrators and partners can read.")
class Query:
    @strawberry.field(description="Every HRSS department known to the platform, in path order.")
    async def tenants(self, info: strawberry.Info) -> list[Tenant]:
        async with info.context.sessions() as session:
            return [Tenant.from_row(row) for row in await tenant_queries.list_tenants(session)]

    @strawberry.field(
        description="One department by its path, e.g. cn/440000/440100; empty if there is none."
    )
    async def tenant(self, info: strawberry.Info, path: str) -> Tenant | None:
        async with info.context.sessions() as session:
            try:
                row = await tenant_queries.get_tenant(session, path)
            except DomainError as err:
                raise bad_input(err) from err
        return Tenant.from_row(row) if row else None
