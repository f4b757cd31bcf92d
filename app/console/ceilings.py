"""Ceilings: for a department of the area, what it may itself grant to each outlet kind (the
ceilings along its ancestry, and which department removed what) and the ceilings it set for those
below it; setting one, with a preview first of the grants below that a narrower one would suspend
(or, for proposals, reject). Over app/ops/grants/ceilings (tenant_ceilings, preview_ceiling,
set_tenant_ceiling), the API's ceilings query and setCeiling."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from app.console.login import Console
from app.console.pages import Problem, form_number, go, posted, show, signed_in
from app.domain.catalogue import CardService, OutletKind
from app.ops.auth import Actor, area_top
from app.ops.errors import OpsError
from app.ops.grants.ceilings import preview_ceiling, set_tenant_ceiling, tenant_ceilings


async def _page(
    request: Request,
    console: Console,
    actor: Actor,
    tenant: str,
    kind: str = "",
    picked: list[str] | None = None,
    *,
    preview: bool = False,
    problem: Problem | None = None,
) -> Response:
    """The department's ceilings; the form holds `kind` with the card services `picked` (default:
    its ceiling's own), and with `preview`, what they would end."""
    ceilings = previewed = None
    try:
        ceilings = await console.read(request, actor, tenant_ceilings, tenant)
        if preview and problem is None:
            previewed = await console.read(request, actor, preview_ceiling, tenant, kind, picked or [])
    except OpsError as err:
        problem = problem or Problem.of(err)
    own = {view.outlet_kind: view for view in (ceilings.own if ceilings else [])}
    if picked is None:
        picked = own[kind].services if kind in own else []
    return show(
        request,
        console,
        actor,
        "ceilings.html",
        status=problem.status if problem else 200,
        tenant=tenant,
        ceilings=ceilings,
        own=own,
        kinds=[k.value for k in OutletKind],
        services=[s.value for s in CardService],
        kind=kind,
        picked=set(picked),
        version=own[kind].version if kind in own else 0,
        preview=previewed,
        may_set=bool(tenant) and actor.guard.can("write", "ceiling", tenant),
        done=request.query_params.get("done"),
        ended=request.query_params.get("ended"),
        problem=problem,
    )


@signed_in
async def ceilings_page(request: Request, console: Console, actor: Actor) -> Response:
    query = request.query_params
    tenant = query.get("tenant", "").strip() or area_top(actor, "ceiling") or ""
    return await _page(request, console, actor, tenant, query.get("kind", "").strip())


async def _chosen(request: Request, fields: dict[str, str]) -> tuple[str, str, list[str]]:
    services = (await request.form()).getlist("services")
    return fields.get("tenant", "").strip(), fields.get("kind", "").strip(), [str(s) for s in services]


@posted
async def ceiling_preview_submit(
    request: Request, console: Console, actor: Actor, fields: dict[str, str]
) -> Response:
    """The preview: a read, posted (not a GET) so that the form's token stays out of the address."""
    tenant, kind, services = await _chosen(request, fields)
    return await _page(request, console, actor, tenant, kind, services, preview=True)


@posted
async def ceiling_submit(
    request: Request, console: Console, actor: Actor, fields: dict[str, str]
) -> Response:
    tenant, kind, services = await _chosen(request, fields)
    try:
        version = form_number(fields, "version")
        change = await console.run(
            request, actor, set_tenant_ceiling, tenant, kind, services, expected_version=version
        )
    except OpsError as err:
        return await _page(request, console, actor, tenant, kind, services, problem=Problem.of(err))
    return go(
        "/console/ceilings?" + urlencode({"tenant": tenant, "done": kind, "ended": change.affected_count})
    )
