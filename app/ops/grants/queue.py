"""An approver's queue: the proposals they may decide, oldest first. Only proposals made in the
departments where they hold `approve` on grant, and never their own nor a linked account's
(grants/approval.py): what they could not approve is not put in front of them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import or_
from sqlmodel.ext.asyncio.session import AsyncSession

from app.ops.auth import Actor
from app.ops.grants.approval import approvable
from app.ops.grants.views import GrantView, views_query
from app.store.queries import in_subtree
from app.store.tables import Grant, Tenant

# Proposals read per page before those the approver may not decide are left out.
WINDOW = 500


@dataclass(frozen=True)
class Queue:
    proposals: list[GrantView]
    # Proposals in the approver's departments they may not decide (their own or linked accounts'):
    # counted, so the department knows someone else must look at them.
    left_to_others: int


async def approval_queue(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, *, request_id: str | None = None
) -> Queue:
    scopes = [s for s in actor.guard.scopes() if actor.guard.can("approve", "grant", s)]
    if not scopes:
        return Queue([], 0)
    async with sessions() as session:
        rows = (
            await session.exec(
                views_query()
                .where(Grant.state == "proposed", or_(*(in_subtree(Tenant.path, s) for s in scopes)))
                .order_by(Grant.id)
                .limit(WINDOW)
            )
        ).all()
        found = [GrantView(*row) for row in rows]
        fit = await approvable(session, actor, {view.grant.proposed_by for view in found})
    mine = [view for view in found if view.grant.proposed_by in fit]
    return Queue(mine, len(found) - len(mine))
