"""Registering an outlet: a form over app/ops/outlets/admin.create_outlet (the API's createOutlet),
whose refusals come back beside the field they concern, with what was typed kept."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.console.login import Console
from app.console.pages import Problem, go, posted, show, signed_in
from app.domain.catalogue import OutletKind
from app.ops.auth import Actor
from app.ops.errors import OpsError
from app.ops.outlets.admin import create_outlet
from app.ops.tenants.admin import area_tree

# The form's fields, by the outlet record keys create_outlet takes (app/domain/outlets.py).
FIELDS = ("id", "name", "kind", "tenant", "bank", "nbs_code", "address")
# The API's input field names a refusal uses, back to the form's.
FORM_FIELD = {"bankCode": "bank", "nbsCode": "nbs_code"}


async def _departments(console: Console, request: Request, actor: Actor) -> list[str]:
    """Where the person may register outlets: the departments of their area they may change outlets
    in (or their scopes alone, for a role that does not read departments)."""
    tree = await console.read(request, actor, area_tree)
    paths = [node.tenant.path for node in tree] or actor.guard.scopes()
    return [path for path in paths if actor.guard.can("write", "outlet", path)]


async def _form(
    request: Request,
    console: Console,
    actor: Actor,
    typed: dict[str, str],
    problem: Problem | None = None,
) -> Response:
    departments = await _departments(console, request, actor)
    marked = problem.marked(FORM_FIELD) if problem else {}
    return show(
        request,
        console,
        actor,
        "outlet_new.html",
        status=problem.status if problem else 200,
        typed=typed,
        kinds=[kind.value for kind in OutletKind],
        departments=departments,
        problem=problem,
        marked=marked,
    )


@signed_in
async def new_outlet_page(request: Request, console: Console, actor: Actor) -> Response:
    return await _form(request, console, actor, {"tenant": request.query_params.get("tenant", "")})


@posted
async def new_outlet_submit(
    request: Request, console: Console, actor: Actor, fields: dict[str, str]
) -> Response:
    typed = {name: fields.get(name, "").strip() for name in FIELDS}
    try:
        created = await console.run(
            request, actor, create_outlet, {name: value or None for name, value in typed.items()}
        )
    except OpsError as err:
        return await _form(request, console, actor, typed, Problem.of(err))
    return go(f"/console/outlets/{created.row.id}")
