"""Ceilings: what a tenant lets its descendants extend to an outlet kind. Setting one (the use case
of the API and its building block), and reading them; shrinking one suspends the grants below it
that no longer fit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.projection import ceiling_line
from app.domain.catalogue import OutletKind, parse_outlet_kind
from app.domain.ceilings import effective_ceiling_for_grant, parse_ceiling_services
from app.ops.auth import Actor, authorize
from app.ops.errors import OpsError, changed_meanwhile, check_version
from app.ops.grants.changes import ceiling_table, end_above_ceiling, tenant_by_path
from app.ops.grants.views import GrantView, views
from app.ops.inputs import MAX_NAME, check_length, parse_input, parse_kind, parse_tenant
from app.ops.refusals import audited_use_case
from app.store import policy
from app.store.audit import append_event
from app.store.tables import Ceiling, Grant, Outlet, Principal, Tenant


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
    expected_version: int | None = None,
) -> CeilingResult:
    """`expected_version` is checked against the row this reads and locks: a check made by an
    earlier statement would let a ceiling inserted between the two (READ COMMITTED) slip through."""
    tenant = await tenant_by_path(session, tenant_path)
    kind = parse_outlet_kind(kind).value
    allowed = parse_ceiling_services(services)
    row = (
        await session.exec(
            select(Ceiling)
            .where(Ceiling.tenant_id == tenant.id, Ceiling.outlet_kind == kind)
            .with_for_update()
        )
    ).first()
    check_version(f"the ceiling of {tenant.path} for {kind}", row.version if row else 0, expected_version)
    before = sorted(row.services.split()) if row else None
    if row is None:
        row = Ceiling(tenant_id=tenant.id, outlet_kind=kind, services="")
        session.add(row)
    else:
        row.version += 1
        await policy.remove_source_lines(session, source="ceiling", source_ids=[str(row.id)], by=actor)
    row.services = " ".join(sorted(allowed))
    row.set_by = set_by
    row.updated_at = datetime.now(UTC)
    await session.flush()
    await policy.add_lines(session, [ceiling_line(tenant.path, kind, allowed, row.id)], by=actor)
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


async def grants_above(
    session: AsyncSession, tenant_path: str, kind: str, table: dict[tuple[str, str], frozenset[str]]
) -> list[tuple[Grant, str, str]]:
    """Active and proposed grants of strict descendants of `tenant_path`, to `kind`, above their
    ceiling under `table`: each with its granting tenant and why."""
    candidates = (
        await session.exec(
            select(Grant, Tenant.path)
            .join(Tenant, Tenant.id == Grant.tenant_id)
            .outerjoin(Outlet, Outlet.id == Grant.outlet_id)
            .where(
                Tenant.path.like(f"{tenant_path}/%"),
                Grant.state.in_(("active", "proposed")),
                or_(Grant.outlet_kind == kind, Outlet.kind == kind),
            )
            .order_by(Grant.id)
        )
    ).all()
    found = []
    for grant, path in candidates:
        allowed, cut_by = effective_ceiling_for_grant(path, kind, table)
        if grant.service not in allowed:
            why = f"above the ceiling set by {cut_by.get(grant.service, tenant_path)} for {kind}"
            found.append((grant, path, why))
    return found


async def _suspend_grants_above(
    session: AsyncSession,
    tenant: Tenant,
    kind: str,
    *,
    actor: str,
    credential: str | None,
    request_id: str | None,
) -> list[Grant]:
    """The grants above the new ceiling end: active ones are suspended, proposals rejected."""
    found = await grants_above(session, tenant.path, kind, await ceiling_table(session))
    await end_above_ceiling(session, found, actor=actor, credential=credential, request_id=request_id)
    return [grant for grant, _, _ in found]


# --- the use cases of the API -------------------------------------------------------------

MAX_CEILING_SERVICES = 32


AFFECTED_SHOWN = 100


@dataclass(frozen=True)
class CeilingView:
    tenant_path: str
    outlet_kind: str
    services: list[str]
    version: int
    updated_at: datetime
    set_by: str | None


@dataclass(frozen=True)
class EffectiveCeiling:
    outlet_kind: str
    services: list[str]
    cut_by: list[tuple[str, str]]  # (card service, tenant whose ceiling removed it)


@dataclass(frozen=True)
class TenantCeilings:
    tenant_path: str
    own: list[CeilingView]
    effective: list[EffectiveCeiling]


@dataclass(frozen=True)
class CeilingChange:
    ceiling: CeilingView
    affected_count: int
    affected: list[GrantView]  # the first AFFECTED_SHOWN suspended or rejected grants


def _ceiling_view(row: Ceiling, tenant_path: str, set_by: str | None) -> CeilingView:
    return CeilingView(
        tenant_path, row.outlet_kind, row.services.split(), row.version, row.updated_at, set_by
    )


def _ceiling_input(tenant: str, outlet_kind: str, services: list[str]) -> tuple[str, str, frozenset[str]]:
    path = parse_tenant(tenant)
    kind = parse_kind(outlet_kind)
    if len(services) > MAX_CEILING_SERVICES:
        raise OpsError("BAD_INPUT", f"at most {MAX_CEILING_SERVICES} card services", field="services")
    for service in services:
        check_length("services", service, MAX_NAME)
    return path, kind, frozenset(parse_input("services", parse_ceiling_services, services))


@dataclass(frozen=True)
class CeilingPreview:
    affected_count: int
    affected: list[GrantView]  # the first AFFECTED_SHOWN grants it would suspend or reject


async def preview_ceiling(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    tenant: str,
    outlet_kind: str,
    services: list[str],
    *,
    request_id: str | None = None,
) -> CeilingPreview:
    """What setting this ceiling would end, without setting it: the grants below `tenant` it would
    suspend (active) or reject (proposed). For those who may set it (`write` on ceiling)."""
    path, kind, allowed = _ceiling_input(tenant, outlet_kind, services)
    await authorize(sessions, actor, "write", "ceiling", path, request_id=request_id)
    async with sessions() as session:
        table = await ceiling_table(session)
        table[(path, kind)] = allowed
        found = await grants_above(session, path, kind, table)
        return CeilingPreview(len(found), await views(session, [g.id for g, _, _ in found[:AFFECTED_SHOWN]]))


@audited_use_case("ceiling.set")
async def set_tenant_ceiling(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    tenant: str,
    outlet_kind: str,
    services: list[str],
    *,
    expected_version: int | None = None,
    request_id: str | None = None,
) -> CeilingChange:
    """Set what `tenant`'s descendants may extend to `outlet_kind`; suspends the grants that no
    longer fit. `expected_version` 0 means "no ceiling is set yet"."""
    path, kind, allowed = _ceiling_input(tenant, outlet_kind, services)
    await authorize(
        sessions, actor, "write", "ceiling", path, target_id=f"{path}:{kind}", request_id=request_id
    )
    # Two first settings of one ceiling both find no row to lock; the second insert then collides.
    try:
        async with sessions() as session, session.begin():
            result = await set_ceiling(
                session,
                path,
                kind,
                sorted(allowed),
                actor=actor.label,
                credential=actor.credential,
                set_by=actor.principal_id,
                request_id=request_id,
                expected_version=expected_version,
            )
            affected = await views(session, [g.id for g in result.suspended[:AFFECTED_SHOWN]])
            return CeilingChange(
                _ceiling_view(result.ceiling, path, actor.name), len(result.suspended), affected
            )
    except IntegrityError:
        raise changed_meanwhile(f"the ceiling of {path} for {kind}") from None


async def tenant_ceilings(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, tenant: str, *, request_id: str | None = None
) -> TenantCeilings:
    """The ceilings `tenant` set for those below it, and the ceilings that bind its own grants."""
    path = parse_tenant(tenant)
    await authorize(sessions, actor, "read", "ceiling", path, request_id=request_id)
    async with sessions() as session:
        tenant_row = await tenant_by_path(session, path)
        own = (
            await session.exec(
                select(Ceiling, Principal.name)
                .outerjoin(Principal, Principal.id == Ceiling.set_by)
                .where(Ceiling.tenant_id == tenant_row.id)
                .order_by(Ceiling.outlet_kind)
            )
        ).all()
        table = await ceiling_table(session)
    effective = []
    for kind in OutletKind:
        allowed, cut_by = effective_ceiling_for_grant(path, kind.value, table)
        effective.append(EffectiveCeiling(kind.value, sorted(allowed), sorted(cut_by.items())))
    return TenantCeilings(path, [_ceiling_view(row, path, name) for row, name in own], effective)
