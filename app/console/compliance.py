"""For auditors (and administrators, who may audit their area): who could perform a card service on
the cards of a department at a chosen time, what one outlet could do then, each with what gave it,
and the permission matrix of that moment as CSV or XLSX. Over app/ops/compliance/history
(who_can_do, what_can_do) and app/downloads (the API's report downloads, with the console's
session instead of a bearer token)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from app import downloads
from app.console.login import Console
from app.console.pages import Problem, query_asked, show, signed_in
from app.console.times import moment, today
from app.domain.catalogue import CardService
from app.domain.errors import DomainError
from app.ops.auth import Actor
from app.ops.compliance.history import what_can_do, who_can_do
from app.ops.errors import OpsError
from app.settings import Settings

PAGE = 50
ASKED = ("tenant", "service", "outlet", "date", "time")


def asked_moment(settings: Settings, asked: dict[str, str]) -> datetime | None:
    """The time a form asks about (Beijing time); None (now) when no date is given."""
    if not asked["date"]:
        return None
    return moment(settings, asked["date"], "date", asked["time"])


@signed_in
async def who_can_page(request: Request, console: Console, actor: Actor) -> Response:
    asked = query_asked(request, actor, ASKED, "audit")
    found = problem = None
    if asked["service"]:
        try:
            at = asked_moment(console.settings, asked)
            after = request.query_params.get("after") or None
            found = await console.read(
                request, actor, who_can_do, asked["tenant"], asked["service"], at, after=after, limit=PAGE
            )
        except OpsError as err:
            problem = Problem.of(err)
    matrix = None
    if found is not None:
        at_text = found.at.isoformat()
        matrix = {
            kind: "/console/reports/permission-matrix?"
            + urlencode({"tenant": asked["tenant"], "at": at_text, "format": kind})
            for kind in ("csv", "xlsx")
        }
    return show(
        request,
        console,
        actor,
        "who_can.html",
        status=problem.status if problem else 200,
        asked=asked,
        today=today(),
        services=[s.value for s in CardService],
        found=found,
        next_after=found.page[-1].outlet.row.id if found and len(found.page) == PAGE else None,
        matrix=matrix,
        problem=problem,
    )


@signed_in
async def what_can_page(request: Request, console: Console, actor: Actor) -> Response:
    asked = query_asked(request, actor, ASKED, "audit")
    found = problem = None
    if asked["outlet"]:
        try:
            at = asked_moment(console.settings, asked)
            found = await console.read(request, actor, what_can_do, asked["outlet"], at)
        except OpsError as err:
            problem = Problem.of(err)
    return show(
        request,
        console,
        actor,
        "what_can.html",
        status=problem.status if problem else 200,
        asked=asked,
        today=today(),
        found=found,
        problem=problem,
    )


Download = Callable[[Request, Actor, Settings], Awaitable[Response]]


def report(download: Download):
    """A report download for the person logged in; a refusal is a page saying why."""

    @signed_in
    async def endpoint(request: Request, console: Console, actor: Actor) -> Response:
        try:
            return await download(request, actor, console.settings)
        except (OpsError, DomainError) as err:
            problem = Problem.of(err) if isinstance(err, OpsError) else Problem("BAD_INPUT", err.message)
            return show(
                request, console, actor, "report_refused.html", status=problem.status, problem=problem
            )

    return endpoint


permission_matrix_download = report(downloads.permission_matrix)
audit_events_download = report(downloads.audit_events)
