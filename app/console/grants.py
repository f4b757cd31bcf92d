"""Grants: the list of the area's grants (filters by state, card service and department, pages of 50),
one grant's page with suspend, resume and revoke, and the grant form, which shows beside each card
service whether the ceilings along the department's ancestry allow it before anything is saved.
Over app/ops/grants (admin.list_grants, get_grant, create_grant, change_grant_state; fit)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.console.login import Console
from app.console.pages import Problem, form_number, go, posted, show, signed_in
from app.console.times import moment, today
from app.domain.catalogue import CardService, OutletKind
from app.ops.auth import Actor
from app.ops.errors import OpsError
from app.ops.grants.admin import (
    GRANT_STATES,
    GrantFilter,
    change_grant_state,
    create_grant,
    get_grant,
    list_grants,
)
from app.ops.grants.changes import GrantRequest
from app.ops.grants.fit import services_fit
from app.ops.outlets.views import get_outlet

PAGE = 50
LIST_FILTERS = ("state", "service", "tenant")
FORM_FIELDS = ("outlet", "kind", "tenant", "service", "valid_from", "valid_until", "document_ref", "reason")
# The API's input field names a refusal uses, back to the form's.
FORM_FIELD = {
    "outletId": "outlet",
    "outletKind": "kind",
    "validFrom": "valid_from",
    "validUntil": "valid_until",
    "documentRef": "document_ref",
}
# The state a button asks for, and the page's word for it.
CHANGES = {"suspend": "suspended", "resume": "active", "revoke": "revoked"}


@signed_in
async def grants_page(request: Request, console: Console, actor: Actor) -> Response:
    asked = {name: request.query_params.get(name, "").strip() for name in LIST_FILTERS}
    after = request.query_params.get("after") or None
    problem, rows, total = None, [], 0
    try:
        rows, total = await console.read(
            request,
            actor,
            list_grants,
            GrantFilter(**{name: value or None for name, value in asked.items()}),
            after=after,
            limit=PAGE,
        )
    except OpsError as err:
        problem = Problem.of(err)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return show(
        request,
        console,
        actor,
        "grants.html",
        status=problem.status if problem else 200,
        asked=asked,
        states=GRANT_STATES,
        services=[s.value for s in CardService],
        rows=rows,
        total=total,
        next_after=str(rows[-1].grant.id) if more else None,
        problem=problem,
    )


async def _grant_page(
    request: Request,
    console: Console,
    actor: Actor,
    *,
    status: int = 200,
    problem: Problem | None = None,
) -> Response:
    try:
        found = await console.read(request, actor, get_grant, request.path_params["grant_id"])
    except OpsError as err:
        return show(request, console, actor, "missing.html", status=Problem.of(err).status)
    if found is None:
        return show(request, console, actor, "missing.html", status=404)
    path, state = found.tenant_path, found.grant.state
    may_write = actor.guard.can("write", "grant", path)
    actions = [
        action
        for action, allowed in (
            ("suspend", may_write and state == "active"),
            ("resume", may_write and state == "suspended"),
            ("revoke", may_write and state in ("active", "suspended")),
        )
        if allowed
    ]
    return show(
        request,
        console,
        actor,
        "grant.html",
        status=status,
        view=found,
        actions=actions,
        may_decide=state == "proposed" and actor.guard.can("approve", "grant", path),
        done=request.query_params.get("done"),
        problem=problem,
    )


@signed_in
async def grant_page(request: Request, console: Console, actor: Actor) -> Response:
    return await _grant_page(request, console, actor)


@posted
async def grant_change_submit(
    request: Request, console: Console, actor: Actor, fields: dict[str, str]
) -> Response:
    action = request.path_params["action"]
    grant_id = request.path_params["grant_id"]
    try:
        if action not in CHANGES:
            raise OpsError("BAD_INPUT", "reload the page and use its buttons", field="action")
        version = form_number(fields, "version")
        await console.run(
            request,
            actor,
            change_grant_state,
            grant_id,
            CHANGES[action],
            reason=fields.get("reason", ""),
            expected_version=version,
        )
    except OpsError as err:
        problem = Problem.of(err)
        return await _grant_page(request, console, actor, status=problem.status, problem=problem)
    return go(f"/console/grants/{grant_id}?done={action}")


async def _form(
    request: Request, console: Console, actor: Actor, typed: dict[str, str], problem: Problem | None = None
) -> Response:
    """The grant form with what was typed; once the department and the outlet (or kind) are known,
    each card service is marked with what the ceilings say of it."""
    fit: dict[str, OpsError | None] | None = None
    outlet_kind = typed.get("kind") or None
    try:
        if typed.get("outlet"):
            outlet = await console.read(request, actor, get_outlet, typed["outlet"])
            outlet_kind = outlet.row.kind if outlet else None
            typed.setdefault("tenant", "")
            typed["tenant"] = typed["tenant"] or (outlet.tenant_path if outlet else "")
        if typed.get("tenant") and outlet_kind:
            fit = await console.read(request, actor, services_fit, typed["tenant"], outlet_kind)
    except OpsError as err:
        problem = problem or Problem.of(err)
    marked = problem.marked(FORM_FIELD) if problem else {}
    return show(
        request,
        console,
        actor,
        "grant_new.html",
        status=problem.status if problem else 200,
        typed=typed,
        kinds=[kind.value for kind in OutletKind],
        services=[s.value for s in CardService],
        fit=fit,
        problem=problem,
        marked=marked,
    )


@signed_in
async def grant_new_page(request: Request, console: Console, actor: Actor) -> Response:
    typed = {name: request.query_params.get(name, "").strip() for name in FORM_FIELDS}
    typed["valid_from"] = typed["valid_from"] or today()
    return await _form(request, console, actor, typed)


@posted
async def grant_new_submit(
    request: Request, console: Console, actor: Actor, fields: dict[str, str]
) -> Response:
    typed = {name: fields.get(name, "").strip() for name in FORM_FIELDS}
    until = typed["valid_until"]
    try:
        made = await console.run(
            request,
            actor,
            create_grant,
            GrantRequest(
                tenant=typed["tenant"],
                service=typed["service"],
                valid_from=moment(console.settings, typed["valid_from"], "valid_from"),
                valid_until=moment(console.settings, until, "valid_until", end=True) if until else None,
                document_ref=typed["document_ref"],
                outlet_id=typed["outlet"] or None,
                outlet_kind=typed["kind"] or None,
                reason=typed["reason"] or None,
            ),
        )
    except OpsError as err:
        return await _form(request, console, actor, typed, Problem.of(err))
    return go(f"/console/grants/{made.grant.id}?done={made.grant.state}")
