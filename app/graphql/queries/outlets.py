"""Outlet queries: the outlets a person may read. Authorization lives in app/ops/outlets/admin.py."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.graphql.pagination import Connection, build_connection, decode_cursor, page_size
from app.graphql.types.outlet import Outlet
from app.ops.outlets import views as outlets
from app.ops.outlets.views import OutletFilter


def _arg(description: str):
    return strawberry.argument(description=description)


@strawberry.type
class OutletQueries:
    @strawberry.field(
        description="Outlets in code order: those of `tenant` and the departments below it (only its own "
        "with descendants: false), or without `tenant` all you may read. Filters combine."
    )
    async def outlets(
        self,
        info: strawberry.Info,
        tenant: Annotated[str | None, _arg("Path of a department you may read.")] = None,
        descendants: Annotated[bool, _arg("Include the departments below `tenant` (default yes).")] = True,
        kind: Annotated[str | None, _arg("Only outlets of this kind, e.g. bank_outlet.")] = None,
        bank: Annotated[str | None, _arg("Only bank outlets of this bank code, e.g. 102.")] = None,
        status: Annotated[str | None, _arg("Only open or only closed outlets.")] = None,
        search: Annotated[
            str | None, _arg("Text (up to 64 characters) found in the name or code, any case.")
        ] = None,
        first: Annotated[int | None, _arg("Page size, 1-200 (default 50).")] = None,
        after: Annotated[str | None, _arg("endCursor of the previous page.")] = None,
    ) -> Connection[Outlet]:
        size = page_size(first)
        rows, total = await info.context.read(
            outlets.list_outlets,
            OutletFilter(tenant, descendants, kind, bank, status, search),
            after=decode_cursor(after),
            limit=size,
        )
        return build_connection(rows, size, total, key=lambda v: v.row.id, node=Outlet.from_view)

    @strawberry.field(
        description="One outlet by its code. Outside your departments the answer is a refusal whether or "
        "not the outlet exists."
    )
    async def outlet(
        self, info: strawberry.Info, id: Annotated[str, _arg("The outlet's code, e.g. gz-th-wushan.")]
    ) -> Outlet | None:
        view = await info.context.read(outlets.get_outlet, id)
        return Outlet.from_view(view) if view else None
