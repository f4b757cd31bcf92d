"""The approval queue: the proposals an approver may decide (never their own nor a linked account's,
app/ops/grants/queue.py), each approved or rejected with a note; a decision is the API's approveGrant
or rejectGrant (app/ops/grants/admin.decide_grant), refused the same way; a bulk grant's proposals
are one batch, decided together (approveBulkGrant, rejectBulkGrant)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.console.login import Console
from app.console.pages import Problem, form_number, go, posted, show, signed_in
from app.ops.auth import Actor
from app.ops.errors import OpsError
from app.ops.grants.admin import decide_grant
from app.ops.grants.bulk_decisions import BulkDecisionRequest, decide_bulk
from app.ops.grants.queue import approval_queue


async def _queue(
    request: Request, console: Console, actor: Actor, *, status: int = 200, problem: Problem | None = None
) -> Response:
    queue = await console.read(request, actor, approval_queue)
    return show(
        request,
        console,
        actor,
        "approvals.html",
        status=status,
        queue=queue,
        done=request.query_params.get("done"),
        problem=problem,
    )


@signed_in
async def approvals_page(request: Request, console: Console, actor: Actor) -> Response:
    return await _queue(request, console, actor)


@posted
async def decide_submit(request: Request, console: Console, actor: Actor, fields: dict[str, str]) -> Response:
    decision = fields.get("decision")
    note = fields.get("note", "").strip()
    try:
        if decision not in ("approve", "reject"):
            raise OpsError("BAD_INPUT", "reload the page and use its buttons", field="decision")
        version = form_number(fields, "version")
        await console.run(
            request,
            actor,
            decide_grant,
            request.path_params["grant_id"],
            approve=decision == "approve",
            expected_version=version,
            reason=note or None,
        )
    except OpsError as err:
        problem = Problem.of(err)
        return await _queue(request, console, actor, status=problem.status, problem=problem)
    return go(f"/console/approvals?done={decision}")


@posted
async def decide_batch_submit(
    request: Request, console: Console, actor: Actor, fields: dict[str, str]
) -> Response:
    """A bulk grant's proposals, decided together: the count the approver saw must still be the
    count in the range (decide_bulk refuses otherwise, so nothing slipped in is approved unseen)."""
    decision = fields.get("decision")
    note = fields.get("note", "").strip()
    try:
        if decision not in ("approve", "reject"):
            raise OpsError("BAD_INPUT", "reload the page and use its buttons", field="decision")
        count = form_number(fields, "count")
        await console.run(
            request,
            actor,
            decide_bulk,
            BulkDecisionRequest(
                tenant=fields.get("tenant", ""),
                first_grant_id=fields.get("first", ""),
                last_grant_id=fields.get("last", ""),
                expected_count=count,
                approve=decision == "approve",
                reason=note or None,
            ),
        )
    except OpsError as err:
        problem = Problem.of(err)
        return await _queue(request, console, actor, status=problem.status, problem=problem)
    return go(f"/console/approvals?done={decision}")
