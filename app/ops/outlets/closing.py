"""Ending an outlet's grants and closing an outlet: the building blocks the API and `ssc tenants apply`
share, so that both leave the same audit trail.

Each revoked grant is a `grant.revoked` event of its own (in its granting tenant's chain, with the
reason), as any revocation is; closing adds one `outlet.close` event listing what it ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.ops.grants.changes import LIVE, change_state
from app.ops.inputs import MAX_REASON
from app.store import policy
from app.store.audit import append_event
from app.store.tables import Grant, Outlet, PartnerKey, Tenant


def snapshot(row: Outlet, tenant_path: str) -> dict:
    return {
        "tenant": tenant_path,
        "kind": row.kind,
        "name": row.name,
        "bank_code": row.bank_code,
        "nbs_code": row.nbs_code,
        "address": row.address,
        "status": row.status,
        "version": row.version,
    }


@dataclass(frozen=True)
class Closed:
    revoked_grants: list[int]
    revoked_keys: list[int]


async def live_grants(session: AsyncSession, outlet_id: str) -> list[tuple[Grant, str]]:
    """The outlet's own grants still proposed, active or suspended, with their granting tenant."""
    return list(
        (
            await session.exec(
                select(Grant, Tenant.path)
                .join(Tenant, Tenant.id == Grant.tenant_id)
                .where(Grant.outlet_id == outlet_id, Grant.state.in_(LIVE))
                .order_by(Grant.id)
            )
        ).all()
    )


async def revoke_grants(
    session: AsyncSession,
    grant_ids: list[int],
    why: str,
    *,
    actor: str,
    credential: str | None = None,
    request_id: str | None = None,
) -> list[int]:
    """Revoke these grants, each with its own event; returns their ids."""
    for grant_id in grant_ids:
        await change_state(
            session, grant_id, "revoked", actor=actor, credential=credential, why=why, request_id=request_id
        )
    return grant_ids


async def close_outlet_row(
    session: AsyncSession,
    row: Outlet,
    tenant_path: str,
    reason: str,
    *,
    actor: str,
    credential: str | None = None,
    request_id: str | None = None,
    detail: dict | None = None,
) -> Closed:
    """Close a locked outlet row for good: its grants revoked, its partner keys revoked, its kind-group
    line removed, one `outlet.close` event. The caller has checked it may."""
    before = snapshot(row, tenant_path)
    live = [grant.id for grant, _ in await live_grants(session, row.id)]
    # A grant's state reason holds MAX_REASON characters; the outlet's event keeps the whole reason.
    revoked = await revoke_grants(
        session,
        live,
        f"outlet closed: {reason}"[:MAX_REASON],
        actor=actor,
        credential=credential,
        request_id=request_id,
    )
    now = datetime.now(UTC)
    keys = (
        await session.exec(
            select(PartnerKey).where(PartnerKey.outlet_id == row.id, PartnerKey.revoked_at.is_(None))
        )
    ).all()
    for key in keys:
        key.revoked_at = now
    await policy.remove_source_lines(session, source="outlet", source_ids=[row.id], by=actor)
    row.status, row.version, row.updated_at = "closed", row.version + 1, now
    await append_event(
        session,
        tenant=tenant_path,
        actor=actor,
        credential=credential,
        action="outlet.close",
        target_type="outlet",
        target_id=row.id,
        request_id=request_id,
        detail={
            **(detail or {}),
            "reason": reason,
            "before": before,
            "after": snapshot(row, tenant_path),
            "revoked_grants": revoked,
            "revoked_keys": [k.id for k in keys],
        },
    )
    return Closed(revoked, [k.id for k in keys])
