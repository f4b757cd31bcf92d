"""The policy revision in answers: what a change wrote, and what the answering worker has applied.

A revision is a position in the policy change log, sent as a decimal string (treat it as opaque and
send it back as it came). A caller that must not be answered from an older policy passes it back in
the `SSC-Revision` request header (docs/api.md, Revisions).
"""

from __future__ import annotations

import strawberry

REVISION = (
    "The policy revision this answer reflects: send it back in the SSC-Revision header, and any worker "
    "answers you only once it has applied at least this revision (else STALE: retry)."
)


def revision_text(revision: int) -> str:
    return str(revision)


@strawberry.interface(
    description="A change to the policy (grants, ceilings, outlets): its answer carries the revision that "
    "holds it."
)
class PolicyChange:
    @strawberry.field(description=REVISION)
    def revision(self, info: strawberry.Info) -> str:
        # The worker caught up with its own write before answering (Context.run).
        return revision_text(info.context.revision)
