"""A bulk grant: one card service to many outlets at once, chosen by a selector (department, kind,
bank, a piece of the code or name) or a list of outlet codes pasted in. "Preview" counts what the
selection holds and names every reason some of it could not be granted, changing nothing; "Grant"
makes the grants (all or none: app/ops/grants/bulk). Under two-person approval they are proposals,
which an approver decides as one batch."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.console.login import Console
from app.console.pages import Problem, posted, show, signed_in
from app.console.times import moment, today
from app.domain.catalogue import CardService, OutletKind
from app.ops.auth import Actor
from app.ops.errors import OpsError
from app.ops.grants.bulk import BulkGrantRequest, bulk_grant
from app.ops.grants.bulk_preview import preview_bulk_grant
from app.ops.grants.selection import OutletSelector

FIELDS = (
    "tenant",
    "service",
    "under",
    "kind",
    "bank",
    "search",
    "outlet_list",
    "valid_from",
    "valid_until",
    "document_ref",
    "reason",
)
FORM_FIELD = {"outletList": "outlet_list", "validFrom": "valid_from", "validUntil": "valid_until"}


def _selection(typed: dict[str, str]) -> tuple[OutletSelector | None, str | None]:
    """The list when one is pasted, else the selector (its department defaults to the grant's)."""
    if typed["outlet_list"]:
        return None, typed["outlet_list"]
    return (
        OutletSelector(
            under=typed["under"] or typed["tenant"] or None,
            kind=typed["kind"] or None,
            bank=typed["bank"] or None,
            search=typed["search"] or None,
        ),
        None,
    )


def _page(request: Request, console: Console, actor: Actor, typed: dict[str, str], **context) -> Response:
    problem = context.get("problem")
    marked = problem.marked(FORM_FIELD) if problem else {}
    return show(
        request,
        console,
        actor,
        "bulk.html",
        status=problem.status if problem else 200,
        typed=typed,
        kinds=[k.value for k in OutletKind],
        services=[s.value for s in CardService],
        marked=marked,
        **{"preview": None, "made": None, "problem": None, "listed": [], **context},
    )


@signed_in
async def bulk_page(request: Request, console: Console, actor: Actor) -> Response:
    typed = {name: request.query_params.get(name, "").strip() for name in FIELDS}
    typed["valid_from"] = typed["valid_from"] or today()
    return _page(request, console, actor, typed)


def _typed(fields: dict[str, str]) -> dict[str, str]:
    # The pasted list keeps its lines; everything else is one line.
    return {
        name: fields.get(name, "") if name == "outlet_list" else fields.get(name, "").strip()
        for name in FIELDS
    }


@posted
async def bulk_preview_submit(
    request: Request, console: Console, actor: Actor, fields: dict[str, str]
) -> Response:
    typed = _typed(fields)
    try:
        preview = await console.read(
            request, actor, preview_bulk_grant, typed["tenant"], typed["service"], *_selection(typed)
        )
    except OpsError as err:
        return _page(request, console, actor, typed, problem=Problem.of(err))
    return _page(request, console, actor, typed, preview=preview)


@posted
async def bulk_submit(request: Request, console: Console, actor: Actor, fields: dict[str, str]) -> Response:
    typed = _typed(fields)
    until = typed["valid_until"]
    try:
        selector, outlet_list = _selection(typed)
        made = await console.run(
            request,
            actor,
            bulk_grant,
            BulkGrantRequest(
                tenant=typed["tenant"],
                service=typed["service"],
                valid_from=moment(console.settings, typed["valid_from"], "valid_from"),
                valid_until=moment(console.settings, until, "valid_until", end=True) if until else None,
                document_ref=typed["document_ref"],
                reason=typed["reason"] or None,
                selector=selector,
                outlet_list=outlet_list,
            ),
        )
    except OpsError as err:
        listed = err.extensions.get("problems") or []
        return _page(request, console, actor, typed, problem=Problem.of(err), listed=listed)
    return _page(request, console, actor, typed, made=made)
