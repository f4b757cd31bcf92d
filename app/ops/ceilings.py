"""Setting a ceiling; shrinking one suspends the grants below it that no longer fit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.projection import ceiling_line
from app.domain.catalogue import parse_outlet_kind
from app.domain.ceilings import effective_ceiling_for_grant, parse_ceiling_services
from app.ops.grants import ceiling_table, end_above_ceiling, tenant_by_path
from app.store import policy
from app.store.audit import append_event
from app.store.tables import Ceiling, Grant, Outlet, Tenant


@dataclass(frozen=True)
class CeilingResult:
    ceiling: Ceiling
    suspended: list[Grant]


async def set_ceiling(
    session: AsyncSession,
    tenant_path: str,
    kind: str,
    services: list[str],
    *,
    actor: str,
    credential: str | None = None,
    set_by: int | None = None,
    request_id: str | None = None,
) -> CeilingResult:
    tenant = await tenant_by_path(session, tenant_path)
    kind = parse_outlet_kind(kind).value
    allowed = parse_ceiling_services(services)
    row = (
        await session.exec(select(Ceiling).where(Ceiling.tenant_id == tenant.id, Ceiling.outlet_kind == kind))
    ).first()
    before = sorted(row.services.split()) if row else None
    if row is None:
        row = Ceiling(tenant_id=tenant.id, outlet_kind=kind, services="")
        session.add(row)
    else:
        row.version += 1
        await policy.remove_source_lines(session, source="ceiling", source_ids=[str(row.id)])
    row.services = " ".join(sorted(allowed))
    row.set_by = set_by
    row.updated_at = datetime.now(UTC)
    await session.flush()
    await policy.add_lines(session, [ceiling_line(tenant.path, kind, allowed, row.id)])
    suspended = await _suspend_grants_above(
        session, tenant, kind, actor=actor, credential=credential, request_id=request_id
    )
    await append_event(
        session,
        tenant=tenant.path,
        actor=actor,
        credential=credential,
        action="ceiling.set",
        target_type="ceiling",
        target_id=f"{tenant.path}:{kind}",
        request_id=request_id,
        detail={"before": before, "after": sorted(allowed), "suspended_grants": [g.id for g in suspended]},
    )
    return CeilingResult(row, suspended)


async def _suspend_grants_above(
    session: AsyncSession,
    tenant: Tenant,
    kind: str,
    *,
    actor: str,
    credential: str | None,
    request_id: str | None,
) -> list[Grant]:
    """Active and proposed grants of strict descendants of `tenant`, to `kind`, above their new ceiling:
    active ones are suspended, proposals rejected."""
    table = await ceiling_table(session)
    candidates = (
        await session.exec(
            select(Grant, Tenant.path)
            .join(Tenant, Tenant.id == Grant.tenant_id)
            .outerjoin(Outlet, Outlet.id == Grant.outlet_id)
            .where(
                Tenant.path.like(f"{tenant.path}/%"),
                Grant.state.in_(("active", "proposed")),
                or_(Grant.outlet_kind == kind, Outlet.kind == kind),
            )
        )
    ).all()
    found = []
    for grant, path in candidates:
        allowed, cut_by = effective_ceiling_for_grant(path, kind, table)
        if grant.service not in allowed:
            why = f"above the ceiling set by {cut_by.get(grant.service, tenant.path)} for {kind}"
            found.append((grant, path, why))
    await end_above_ceiling(session, found, actor=actor, credential=credential, request_id=request_id)
    return [grant for grant, _, _ in found]
