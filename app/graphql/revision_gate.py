"""The `SSC-Revision` request header: answer only once this worker has applied that revision.

A client that was told of a change (with the revision its answer carried) names that revision, and
whichever worker it reaches waits until its policy index holds it, up to a bound, so that no
decision is made on an older policy (docs/api.md, Revisions).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.authz.sync import PolicyTailer, RevisionUnknown
from app.graphql.http_errors import error_response

REVISION_HEADER = "ssc-revision"
MAX_REVISION_DIGITS = 19  # the change log's ids are 64-bit


async def revision_refusal(request: Request, policy: PolicyTailer, wait_seconds: float) -> Response | None:
    """None once the worker has applied the revision the request names, if it names one; else the
    answer: STALE (retry, perhaps on another worker) or BAD_INPUT (not a revision anyone was given)."""
    wanted = request.headers.get(REVISION_HEADER)
    if wanted is None:
        return None
    wanted = wanted.strip()
    if not (wanted.isascii() and wanted.isdigit() and len(wanted) <= MAX_REVISION_DIGITS):
        return error_response(
            "SSC-Revision is a revision as an answer gave it (digits)", "BAD_INPUT", field="SSC-Revision"
        )
    try:
        reached = await policy.reach(int(wanted), wait_seconds)
    except RevisionUnknown:
        return error_response(f"no revision {wanted} was ever committed", "BAD_INPUT", field="SSC-Revision")
    if reached:
        return None
    return error_response(
        f"this worker has not yet applied revision {wanted} (it is at {policy.revision}); retry",
        "STALE",
        revision=wanted,
        applied=str(policy.revision),
        retryAfter=1,
    )
