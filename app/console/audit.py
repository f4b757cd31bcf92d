"""The audit trail as auditors read it: its events, newest first, with filters (department, time range, actor,
outlet, action, decision, reason), pages of 50, the same selection as CSV or XLSX, and whether the
trail was verified and signed (the latest `ssc audit verify` and checkpoint); the grant history of
an area; its anomalies. Over app/ops/compliance (events, verifications, anomalies)."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from app.console.login import Console
from app.console.pages import Problem, query_asked, show, signed_in
from app.console.times import moment, today
from app.domain.reasons import Reason
from app.ops.auth import Actor
from app.ops.compliance.anomalies import KINDS, anomalies
from app.ops.compliance.events import DECISIONS, EventFilter, grant_history, list_events
from app.ops.compliance.verifications import trail_status
from app.ops.errors import OpsError

PAGE = 50
FILTERS = ("tenant", "since", "until", "actor", "outlet", "action", "decision", "reason")


def _range(console: Console, asked: dict[str, str]) -> tuple[datetime | None, datetime | None]:
    """The days asked (Beijing time), the last one included."""
    since = moment(console.settings, asked["since"], "since") if asked["since"] else None
    until = moment(console.settings, asked["until"], "until", end=True) if asked["until"] else None
    return since, until


@signed_in
async def audit_page(request: Request, console: Console, actor: Actor) -> Response:
    asked = query_asked(request, actor, FILTERS, "audit")
    after = request.query_params.get("after") or None
    rows, total, status, problem = [], 0, None, None
    since = until = None
    try:
        since, until = _range(console, asked)
        chosen = {name: asked[name] or None for name in FILTERS if name not in ("since", "until")}
        rows, total = await console.read(
            request,
            actor,
            list_events,
            EventFilter(since=since, until=until, **chosen),
            after=after,
            limit=PAGE,
            newest_first=True,
        )
        status = await console.read(request, actor, trail_status, asked["tenant"])
    except OpsError as err:
        problem = Problem.of(err)
    # The download is the same selection, with the API's names for the range.
    selection = {name: value for name, value in asked.items() if value and name not in ("since", "until")}
    selection |= {"from": since.isoformat()} if since else {}
    selection |= {"to": until.isoformat()} if until else {}
    return show(
        request,
        console,
        actor,
        "audit.html",
        status=problem.status if problem else 200,
        asked=asked,
        today=today(),
        decisions=DECISIONS,
        reasons=[r.value for r in Reason],
        rows=rows,
        total=total,
        trail=status,
        downloads={
            kind: f"/console/reports/audit-events?{urlencode(selection | {'format': kind})}"
            for kind in ("csv", "xlsx")
        },
        next_after=str(rows[-1].id) if len(rows) == PAGE else None,
        problem=problem,
    )


@signed_in
async def grant_history_page(request: Request, console: Console, actor: Actor) -> Response:
    asked = query_asked(request, actor, ("tenant", "since", "until"), "audit")
    after = request.query_params.get("after") or None
    changes, total, problem = [], 0, None
    try:
        since, until = _range(console, asked)
        changes, total = await console.read(
            request, actor, grant_history, asked["tenant"], since, until, after=after, limit=PAGE
        )
    except OpsError as err:
        problem = Problem.of(err)
    return show(
        request,
        console,
        actor,
        "grant_history.html",
        status=problem.status if problem else 200,
        asked=asked,
        today=today(),
        changes=changes,
        total=total,
        next_after=str(changes[-1].event.id) if len(changes) == PAGE else None,
        problem=problem,
    )


@signed_in
async def anomalies_page(request: Request, console: Console, actor: Actor) -> Response:
    asked = query_asked(request, actor, ("tenant",), "audit")
    found, problem = [], None
    try:
        found = await console.read(request, actor, anomalies, asked["tenant"])
    except OpsError as err:
        problem = Problem.of(err)
    return show(
        request,
        console,
        actor,
        "anomalies.html",
        status=problem.status if problem else 200,
        asked=asked,
        kinds=KINDS,
        found=found,
        problem=problem,
    )
