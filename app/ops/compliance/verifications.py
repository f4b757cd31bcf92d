"""When the audit trail was last verified and signed: each `ssc audit verify` over the database is
recorded with what it found, and auditors read the latest run and the latest signed checkpoint."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.regions import ROOT
from app.ops.auth import Actor, authorize
from app.ops.compliance.verify import Verification
from app.store.tables import AuditCheckpoint, AuditVerification


async def record_verification(
    sessions: async_sessionmaker[AsyncSession], found: Verification, scope: str | None
) -> None:
    """Keep what a verification run found (its first finding as the command printed it)."""
    findings = [f"{b.tenant} at event {b.seq}: {b.problem}" for b in found.breaks] + found.problems
    async with sessions() as session, session.begin():
        session.add(
            AuditVerification(
                scope=scope or ROOT,
                events=found.events,
                chains=found.tenants,
                seconds=round(found.seconds, 3),
                ok=found.ok,
                breaks=len(found.breaks),
                problems=len(found.problems),
                checkpoint_id=found.checkpoint.id if found.checkpoint else None,
                first_finding=findings[0][:512] if findings else None,
            )
        )


@dataclass(frozen=True)
class TrailStatus:
    verification: AuditVerification | None  # the latest run over the whole trail or part of it
    checkpoint: AuditCheckpoint | None  # the latest signed statement of the chains' heads


async def trail_status(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, tenant: str, *, request_id: str | None = None
) -> TrailStatus:
    """For someone who may read the audit of `tenant`: the latest verification and checkpoint (both
    cover every chain, so neither says anything of another department's events)."""
    await authorize(sessions, actor, "read", "audit", tenant, request_id=request_id)
    async with sessions() as session:
        verification = (
            await session.exec(select(AuditVerification).order_by(AuditVerification.id.desc()).limit(1))
        ).first()
        checkpoint = (
            await session.exec(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1))
        ).first()
    return TrailStatus(verification, checkpoint)
