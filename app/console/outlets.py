"""The outlets of the caller's area: search by code or name, filters (kind, status, department with
the departments below it), 50 a page in code order with a link to the next (keyset paging), over
app/ops/outlets/views.list_outlets; a GET form, so a search is a link one can keep or send."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.console.login import Console
from app.console.pages import show, signed_in
from app.domain.catalogue import OutletKind
from app.ops.auth import Actor
from app.ops.errors import OpsError
from app.ops.outlets.views import STATUSES, OutletFilter, list_outlets

PAGE = 50
COUNTED = 1000  # beyond this the page says "more than 1,000": counting further costs, and tells nothing
FILTERS = ("search", "kind", "status", "tenant")


@signed_in
async def outlets_page(request: Request, console: Console, actor: Actor) -> Response:
    asked = {name: request.query_params.get(name, "").strip() for name in FILTERS}
    after = request.query_params.get("after") or None
    chosen = {name: value or None for name, value in asked.items()}
    error, rows, total = None, [], 0
    try:
        rows, total = await console.read(
            request, actor, list_outlets, OutletFilter(**chosen), after=after, limit=PAGE, count_limit=COUNTED
        )
    except OpsError as err:
        error = err.code
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return show(
        request,
        console,
        actor,
        "outlets.html",
        status=200 if error is None else 400 if error == "BAD_INPUT" else 403,
        asked=asked,
        kinds=[kind.value for kind in OutletKind],
        statuses=STATUSES,
        rows=rows,
        total=total,
        counted=COUNTED,
        next_after=rows[-1].row.id if more else None,
        error=error,
    )
