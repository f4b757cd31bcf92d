"""An approver's queue: the proposals they may decide, oldest first. Only proposals made in the
departments where they hold `approve` on grant, and never their own nor a linked account's
(grants/approval.py): what they could not approve is not put in front of them. The proposals one
bulk grant made (same department, proposer, card service, document, window and moment) come as one
batch, decided together (bulk_decisions.decide_bulk), not as thousands of lines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import aliased
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.ops.auth import Actor
from app.ops.grants.approval import approvable
from app.ops.grants.views import GrantView, views
from app.store.queries import in_any_subtree
from app.store.tables import Grant, Principal, Tenant

# Groups of proposals read at most (the oldest first): a queue longer than this is shown in parts.
WINDOW = 500


@dataclass(frozen=True)
class Batch:
    """The proposals of one bulk grant."""

    tenant_path: str
    proposed_by: str | None
    service: str
    document_ref: str
    valid_from: datetime
    valid_until: datetime | None
    first_grant_id: int
    last_grant_id: int
    count: int


@dataclass(frozen=True)
class Queue:
    proposals: list[GrantView]
    batches: list[Batch]
    # Proposals in the approver's departments they may not decide (their own or linked accounts'):
    # counted, so the department knows someone else must look at them.
    left_to_others: int


async def approval_queue(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, *, request_id: str | None = None
) -> Queue:
    scopes = [s for s in actor.guard.scopes() if actor.guard.can("approve", "grant", s)]
    if not scopes:
        return Queue([], [], 0)
    proposer = aliased(Principal)
    together = (
        Tenant.path,
        Grant.proposed_by,
        proposer.name,
        Grant.service,
        Grant.document_ref,
        Grant.valid_from,
        Grant.valid_until,
        Grant.created_at,
    )
    async with sessions() as session:
        groups = (
            await session.exec(
                select(*together, func.min(Grant.id), func.max(Grant.id), func.count())
                .join(Tenant, Tenant.id == Grant.tenant_id)
                .outerjoin(proposer, proposer.id == Grant.proposed_by)
                .where(Grant.state == "proposed", in_any_subtree(Tenant.path, scopes))
                .group_by(*together)
                .order_by(func.min(Grant.id))
                .limit(WINDOW)
            )
        ).all()
        fit = await approvable(session, actor, {group[1] for group in groups})
        mine = [group for group in groups if group[1] in fit]
        single = await views(session, [group[8] for group in mine if group[10] == 1])
    batches = [
        Batch(path, name, service, document, start, end, first, last, count)
        for path, _, name, service, document, start, end, _, first, last, count in mine
        if count > 1
    ]
    others = sum(group[10] for group in groups if group[1] not in fit)
    return Queue(single, batches, others)
