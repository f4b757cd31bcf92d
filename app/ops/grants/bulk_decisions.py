"""Deciding at once every proposal a bulk grant created under two-person approval.

The approver names the bulk grant by its tenant and grant id range, and the count they reviewed: a
different number of proposals in that range is a CONFLICT, so nothing slipped in is approved unseen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import and_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.projection import grant_line
from app.ops.auth import Actor, authorize, deny
from app.ops.errors import OpsError, changed_meanwhile
from app.ops.grants import changes as grants
from app.ops.grants.approval import approval_refusal
from app.ops.grants.bulk import BulkGrantResult, NewGrant
from app.ops.grants.selection import SAMPLE
from app.ops.inputs import (
    parse_grant_id,
    parse_tenant,
    reason_text,
)
from app.ops.refusals import audited_use_case
from app.store import policy
from app.store.audit import append_event
from app.store.policy import ProjectedLine
from app.store.slices import mapped, streamed
from app.store.tables import Grant, Outlet


@dataclass(frozen=True)
class BulkDecisionRequest:
    """The proposals of one bulk grant: its tenant and grant id range, and how many the approver saw."""

    tenant: str
    first_grant_id: str
    last_grant_id: str
    expected_count: int
    approve: bool
    reason: str | None = None


def _range_where(tenant_id: int, first: int, last: int):
    return and_(Grant.tenant_id == tenant_id, Grant.id >= first, Grant.id <= last, Grant.state == "proposed")


async def _proposal_summary(session: AsyncSession, where) -> tuple[list[int | None], list[tuple[str, str]]]:
    """The proposers, and the (outlet kind, card service) pairs, of the proposals in range."""
    proposers = (await session.exec(select(Grant.proposed_by).where(where).distinct())).all()
    kind = func.coalesce(Grant.outlet_kind, Outlet.kind)
    targets = (
        await session.exec(
            select(kind, Grant.service)
            .outerjoin(Outlet, Outlet.id == Grant.outlet_id)
            .where(where)
            .distinct()
        )
    ).all()
    return list(proposers), [tuple(t) for t in targets]


@audited_use_case("grant.bulk_decide")
async def decide_bulk(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    req: BulkDecisionRequest,
    *,
    request_id: str | None = None,
) -> BulkGrantResult:
    """Approve or reject, all at once, the proposals a bulk grant created under two-person approval.

    The approver names the bulk grant by its tenant and grant id range, and the count they reviewed:
    a different number of proposals in that range is a CONFLICT, so nothing slipped in is approved
    unseen. The proposals must come from one proposer, whom the usual rules forbid the approver to be.
    """
    tenant = parse_tenant(req.tenant)
    first = parse_grant_id(req.first_grant_id, "firstGrantId")
    last = parse_grant_id(req.last_grant_id, "lastGrantId")
    if req.reason is None and not req.approve:
        raise OpsError("BAD_INPUT", "say why the proposals are rejected", field="reason")
    why = reason_text(req.reason) if req.reason is not None else None
    await authorize(
        sessions, actor, "approve", "grant", tenant, target_id=f"{first}..{last}", request_id=request_id
    )
    refusal = None
    async with sessions() as session, session.begin():
        tenant_row = await grants.tenant_by_path(session, tenant)
        where = _range_where(tenant_row.id, first, last)
        proposers, targets = await _proposal_summary(session, where)
        count = (await session.exec(select(func.count()).select_from(Grant).where(where))).one()
        if count != req.expected_count:
            raise OpsError(
                "CONFLICT",
                f"{count} proposals of {tenant} lie in grants {first}..{last}, not {req.expected_count}",
                currentCount=count,
            )
        if count == 0:
            raise OpsError("BAD_INPUT", "no proposals in that range", field="firstGrantId")
        if len(proposers) > 1:
            raise OpsError(
                "BAD_INPUT", "the range holds proposals of several people; narrow it", field="firstGrantId"
            )
        if req.approve:
            refusal = await approval_refusal(session, actor, proposers[0], f"grants {first}..{last}")
        if refusal is None:
            return await _apply_bulk_decision(
                session, actor, req, tenant, tenant_row.id, (first, last), count, targets, why, request_id
            )
    raise await deny(
        sessions,
        actor,
        "grant.approve",
        "grant",
        f"{first}..{last}",
        tenant,
        request_id=request_id,
        why=refusal,
    )


async def _apply_bulk_decision(
    session: AsyncSession,
    actor: Actor,
    req: BulkDecisionRequest,
    tenant: str,
    tenant_id: int,
    id_range: tuple[int, int],
    count: int,
    targets: list[tuple[str, str]],
    why: str | None,
    request_id: str | None,
) -> BulkGrantResult:
    first, last = id_range
    if req.approve:  # every (kind, service) must still fit: a ceiling may have shrunk since
        table = await grants.ceiling_table(session)
        for kind, service in targets:
            refusal = grants.ceiling_refusal(tenant, kind, service, table)
            if refusal is not None:
                raise refusal
    state = "active" if req.approve else "rejected"
    where = _range_where(tenant_id, first, last)
    chosen = select(
        Grant.id, Grant.outlet_id, Grant.outlet_kind, Grant.service, Grant.valid_from, Grant.valid_until
    )
    changed = await streamed(session, chosen.where(where).order_by(Grant.id))
    updated = await session.exec(
        update(Grant)
        .where(where)
        .values(
            state=state,
            state_reason=why,
            approved_by=actor.principal_id if req.approve else None,
            version=Grant.version + 1,
            updated_at=datetime.now(UTC),
        )
        .execution_options(synchronize_session=False)
    )
    # Compare-and-set over the whole range: on PostgreSQL a concurrent decision may have taken some
    # of these proposals after they were counted (the UPDATE waited for its row locks, then skipped
    # rows no longer proposed).
    if updated.rowcount != len(changed):
        raise changed_meanwhile(f"the proposals {first}..{last}")
    if req.approve:

        def line(grant: tuple) -> ProjectedLine:
            gid, outlet_id, kind, service, nbf, exp = grant
            return grant_line(NewGrant(gid, outlet_id, service, nbf, exp, kind), tenant)

        await policy.add_lines(session, await mapped(line, changed), by=actor.label)
    await append_event(
        session,
        tenant=tenant,
        actor=actor.label,
        credential=actor.credential,
        action="grant.bulk_approve" if req.approve else "grant.bulk_reject",
        target_type="grant",
        target_id=f"{first}..{last}",
        request_id=request_id,
        detail={"count": count, "state": state, "first_grant_id": first, "last_grant_id": last, "why": why},
    )
    return BulkGrantResult(
        count=count,
        state=state,
        first_grant_id=changed[0][0],
        last_grant_id=changed[-1][0],
        sample_grant_ids=[row[0] for row in changed[:SAMPLE]],
        sample_outlet_ids=[row[1] for row in changed[:SAMPLE] if row[1] is not None],
    )
