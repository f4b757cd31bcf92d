"""The overview: the departments of the caller's area as a tree, each with the settings in force there
(and where each comes from), over app/ops/tenants/admin.area_tree."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.console.login import Console
from app.console.rendering import render
from app.ops.tenants.admin import area_tree


async def overview_page(request: Request) -> Response:
    console: Console = request.app.state.console
    actor = await console.actor(request)
    if actor is None:
        return RedirectResponse("/console/login", status_code=303)
    tree = await area_tree(console.sessions, actor)
    return render(request, "overview.html", actor=actor, tree=tree, csrf=console.form_token(request))
