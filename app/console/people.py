"""People: those holding a role in a department of the area, one person's roles and tokens, giving
and taking roles, revoking a token, deactivating; and a new person with their one-time enrolment
token (shown once). Over app/ops/principals, so nobody sees a role outside their reach nor hands
out one above their own (the role list offers only those they may give)."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from app.console.login import Console
from app.console.pages import Problem, form_number, go, posted, show, signed_in
from app.domain.roles import AdminRole
from app.ops.auth import Actor, area_top
from app.ops.errors import OpsError
from app.ops.principals.admin import assign_role, create_principal, deactivate_principal, remove_role
from app.ops.principals.tokens import revoke_token
from app.ops.principals.views import get_principal, list_principals

PAGE = 50


def assignable(actor: Actor) -> list[str]:
    """The roles the person may hand out somewhere in their area."""
    return [
        r.value for r in AdminRole if any(actor.guard.may_assign(r.value, s) for s in actor.guard.scopes())
    ]


def person_url(name: str) -> str:
    return f"/console/people/{quote(name, safe='')}"


@signed_in
async def people_page(request: Request, console: Console, actor: Actor) -> Response:
    tenant = request.query_params.get("tenant", "").strip() or area_top(actor, "principal") or ""
    after = request.query_params.get("after") or None
    people, total, problem = [], 0, None
    try:
        people, total = await console.read(
            request, actor, list_principals, tenant=tenant, after=after, limit=PAGE
        )
    except OpsError as err:
        problem = Problem.of(err)
    more = len(people) > PAGE
    people = people[:PAGE]
    return show(
        request,
        console,
        actor,
        "people.html",
        status=problem.status if problem else 200,
        tenant=tenant,
        people=people,
        total=total,
        next_after=str(people[-1].id) if more else None,
        problem=problem,
    )


async def _person(
    request: Request, console: Console, actor: Actor, *, problem: Problem | None = None
) -> Response:
    try:
        person = await console.read(request, actor, get_principal, request.path_params["name"])
    except OpsError as err:
        return show(request, console, actor, "missing.html", status=Problem.of(err).status)
    return show(
        request,
        console,
        actor,
        "person.html",
        status=problem.status if problem else 200,
        person=person,
        roles=assignable(actor),
        is_self=person.id == actor.principal_id,
        done=request.query_params.get("done"),
        problem=problem,
    )


@signed_in
async def person_page(request: Request, console: Console, actor: Actor) -> Response:
    return await _person(request, console, actor)


def _person_change(use_case, fields_of, done: str):
    """A form on a person's page: the use case with the person's name and the form's fields, then
    back to the page; a refusal is shown there."""

    @posted
    async def endpoint(request: Request, console: Console, actor: Actor, fields: dict[str, str]) -> Response:
        name = request.path_params["name"]
        try:
            await console.run(request, actor, use_case, **fields_of(name, fields, request))
        except OpsError as err:
            return await _person(request, console, actor, problem=Problem.of(err))
        return go(f"{person_url(name)}?done={done}")

    return endpoint


def _token_of(name: str, request: Request) -> dict[str, int | str]:
    return {"token_id": request.path_params["token_id"], "owner_name": name}


assign_submit = _person_change(
    assign_role,
    lambda name, f, _: {"name": name, "tenant": f.get("tenant", ""), "role": f.get("role", "")},
    "assigned",
)
remove_submit = _person_change(
    remove_role,
    lambda name, f, _: {"name": name, "tenant": f.get("tenant", ""), "role": f.get("role", "")},
    "removed",
)
deactivate_submit = _person_change(
    deactivate_principal,
    lambda name, f, _: {
        "name": name,
        "reason": f.get("reason", ""),
        "expected_version": form_number(f, "version"),
    },
    "deactivated",
)
revoke_token_submit = _person_change(
    revoke_token, lambda name, f, request: _token_of(name, request), "revoked"
)


@signed_in
async def new_person_page(request: Request, console: Console, actor: Actor) -> Response:
    return show(
        request, console, actor, "person_new.html", roles=assignable(actor), typed={}, issued=None, marked={}
    )


@posted
async def new_person_submit(
    request: Request, console: Console, actor: Actor, fields: dict[str, str]
) -> Response:
    """A new person: the answer shows their one-time enrolment token, this once (not stored)."""
    typed = {name: fields.get(name, "").strip() for name in ("name", "display_name", "tenant", "role")}
    try:
        person, issued = await console.run(
            request,
            actor,
            create_principal,
            name=typed["name"],
            tenant=typed["tenant"],
            role=typed["role"],
            display_name=typed["display_name"] or None,
        )
    except OpsError as err:
        problem = Problem.of(err)
        return show(
            request,
            console,
            actor,
            "person_new.html",
            status=problem.status,
            roles=assignable(actor),
            typed=typed,
            issued=None,
            problem=problem,
            marked=problem.fields,
        )
    return show(
        request,
        console,
        actor,
        "person_new.html",
        roles=assignable(actor),
        typed={},
        issued=issued,
        person=person,
        marked={},
    )
