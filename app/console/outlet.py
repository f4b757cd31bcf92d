"""One outlet's page: what it is, the grants that name it or its kind, the card services it may
perform now and what gives each one, its partner keys (a new key is shown once, on the answer to the
form that made it), moving it to another department and closing it. Over app/ops: outlets.views,
grants.admin, compliance.history (what_can_do), partner_keys.admin and outlets.admin."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from app.console.login import Console
from app.console.pages import Problem, form_number, go, posted, show, signed_in
from app.ops.auth import Actor
from app.ops.compliance.history import what_can_do
from app.ops.errors import OpsError
from app.ops.grants.admin import GrantFilter, list_grants
from app.ops.outlets.admin import close_outlet, update_outlet
from app.ops.outlets.views import OutletView, effective_services, get_outlet
from app.ops.partner_keys.admin import issue_partner_key, keys_for, revoke_partner_key

GRANTS_SHOWN = 100


async def _outlet_or_refusal(
    request: Request, console: Console, actor: Actor
) -> tuple[OutletView | None, Response | None]:
    """The outlet of the path, or the page to answer instead: one refusal for an outlet outside the
    area and one that does not exist (the API's rule, DESIGN.md §7)."""
    outlet_id = request.path_params["outlet_id"]
    try:
        found = await console.read(request, actor, get_outlet, outlet_id)
    except OpsError as err:
        return None, show(request, console, actor, "missing.html", status=Problem.of(err).status)
    if found is None:
        return None, show(request, console, actor, "missing.html", status=404)
    return found, None


async def _page(
    request: Request,
    console: Console,
    actor: Actor,
    outlet: OutletView,
    *,
    status: int = 200,
    problem: Problem | None = None,
    issued: Any = None,
) -> Response:
    path = outlet.tenant_path
    grants: list = []
    if actor.guard.can("read", "grant", path):
        grants, _ = await console.read(
            request, actor, list_grants, GrantFilter(outlet=outlet.row.id), after=None, limit=GRANTS_SHOWN
        )
    # What gives each card service comes from the compliance plane, which auditors and administrators
    # read; operators and approvers see the card services alone.
    explained = actor.guard.can("read", "audit", path)
    if explained:
        held = (await console.read(request, actor, what_can_do, outlet.row.id)).services
        services = [(s.service, s.via) for s in held]
    else:
        business = request.app.state.business
        services = [(name, ()) for name in effective_services(business, outlet, None)]
    keys = (await console.read(request, actor, keys_for, [(outlet.row.id, path)]))[0]
    return show(
        request,
        console,
        actor,
        "outlet.html",
        status=status,
        outlet=outlet,
        grants=grants[:GRANTS_SHOWN],
        services=services,
        explained=explained,
        keys=keys,
        may_change=actor.guard.can("write", "outlet", path) and outlet.row.status == "open",
        may_grant=actor.guard.can("write", "grant", path) and outlet.row.status == "open",
        problem=problem,
        issued=issued,
    )


@signed_in
async def outlet_page(request: Request, console: Console, actor: Actor) -> Response:
    outlet, refusal = await _outlet_or_refusal(request, console, actor)
    return refusal or await _page(request, console, actor, outlet)


@posted
async def close_submit(request: Request, console: Console, actor: Actor, fields: dict[str, str]) -> Response:
    outlet, refusal = await _outlet_or_refusal(request, console, actor)
    if refusal is not None:
        return refusal
    try:
        await console.run(
            request,
            actor,
            close_outlet,
            outlet.row.id,
            fields.get("reason", ""),
            form_number(fields, "version"),
        )
    except OpsError as err:
        problem = Problem.of(err)
        return await _page(request, console, actor, outlet, status=problem.status, problem=problem)
    return go(f"/console/outlets/{outlet.row.id}")


@posted
async def move_submit(request: Request, console: Console, actor: Actor, fields: dict[str, str]) -> Response:
    """To another department of the area (updateOutlet): the grants made to it by name are revoked,
    since they were made for where it was."""
    outlet, refusal = await _outlet_or_refusal(request, console, actor)
    if refusal is not None:
        return refusal
    try:
        changes = {"tenant": fields.get("tenant", "").strip()}
        await console.run(
            request, actor, update_outlet, outlet.row.id, form_number(fields, "version"), changes
        )
    except OpsError as err:
        problem = Problem.of(err)
        return await _page(request, console, actor, outlet, status=problem.status, problem=problem)
    return go(f"/console/outlets/{outlet.row.id}")


@posted
async def key_submit(request: Request, console: Console, actor: Actor, fields: dict[str, str]) -> Response:
    """A new partner key: its clear text is on this answer only (no redirect, no cache), never again."""
    outlet, refusal = await _outlet_or_refusal(request, console, actor)
    if refusal is not None:
        return refusal
    try:
        days = form_number(fields, "days")
        issued = await console.run(
            request,
            actor,
            issue_partner_key,
            outlet.row.id,
            days=days,
            max_rate_limit=console.settings.partner_rate_limit_max,
            max_keys=console.settings.partner_max_keys_per_outlet,
        )
    except OpsError as err:
        problem = Problem.of(err)
        return await _page(request, console, actor, outlet, status=problem.status, problem=problem)
    return await _page(request, console, actor, outlet, issued=issued)


@posted
async def key_revoke(request: Request, console: Console, actor: Actor, fields: dict[str, str]) -> Response:
    outlet, refusal = await _outlet_or_refusal(request, console, actor)
    if refusal is not None:
        return refusal
    key_id: int = request.path_params["key_id"]
    try:
        await console.run(
            request,
            actor,
            revoke_partner_key,
            key_id=key_id,
            prefix=None,
            reason=fields.get("reason", ""),
            outlet_id=outlet.row.id,
        )
    except OpsError as err:
        problem = Problem.of(err)
        return await _page(request, console, actor, outlet, status=problem.status, problem=problem)
    return go(f"/console/outlets/{outlet.row.id}")
