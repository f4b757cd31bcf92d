"""The overview: the departments of the caller's area as a tree, each with the settings in force there
(and where each comes from), over app/ops/tenants/admin.area_tree."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.console.login import Console
from app.console.pages import show, signed_in
from app.ops.auth import Actor
from app.ops.tenants.admin import area_tree


@signed_in
async def overview_page(request: Request, console: Console, actor: Actor) -> Response:
    tree = await area_tree(console.sessions, actor)
    return show(request, console, actor, "overview.html", tree=tree)
