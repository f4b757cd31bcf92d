"""Queries about people. Each resolver authenticates the caller and delegates to app/ops."""

from __future__ import annotations

import strawberry

from app.graphql.pagination import Connection, build_connection, decode_cursor, page_size
from app.graphql.types.principal import Principal
from app.ops.principals import views as principal_views


@strawberry.type
class PrincipalQueries:
    @strawberry.field(
        description="People holding a role in the department `tenant` or below it, oldest first."
    )
    async def principals(
        self,
        info: strawberry.Info,
        tenant: str,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Principal]:
        size = page_size(first)
        views, total = await info.context.read(
            principal_views.list_principals, tenant=tenant, after=decode_cursor(after), limit=size
        )
        return build_connection(views, size, total, key=lambda v: str(v.id), node=Principal.from_view)

    @strawberry.field(
        description="One person by login name: yourself, or someone holding a role within your reach."
    )
    async def principal(self, info: strawberry.Info, name: str) -> Principal:
        view = await info.context.read(principal_views.get_principal, name)
        return Principal.from_view(view)
