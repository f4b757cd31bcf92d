"""Outlets as people read them: the outlets a person may read, one outlet, its tenant, its grants and
the card services it may perform (effectiveServices). FORBIDDEN outside the caller's reach whether or
not the outlet exists (DESIGN.md §7)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.policy_state import BUILTIN_PREFIX, BusinessPolicy
from app.authz.projection import outlet_subject, policy_time
from app.domain import outlets as outlet_rules
from app.domain.ceilings import statutory_allowed
from app.domain.regions import ROOT
from app.ops.auth import Actor, authorize, deny
from app.ops.errors import OpsError
from app.ops.inputs import parse_kind, parse_tenant
from app.store.outlet_search import contains
from app.store.queries import in_any_subtree, outlet_with_path
from app.store.tables import Grant, Outlet, Tenant

STATUSES = ("open", "closed")


MAX_SEARCH = 64


@dataclass(frozen=True)
class OutletView:
    """An outlet row with the path of its tenant (what every reader of an outlet needs)."""

    row: Outlet
    tenant_path: str


@dataclass(frozen=True)
class OutletFilter:
    tenant: str | None = None
    descendants: bool = True
    kind: str | None = None
    bank: str | None = None
    status: str | None = None
    search: str | None = None


def _conditions(flt: OutletFilter) -> list:
    conditions = []
    if flt.kind is not None:
        conditions.append(Outlet.kind == parse_kind(flt.kind, "kind"))
    if flt.bank is not None:
        if not outlet_rules.BANK_CODE.fullmatch(flt.bank):
            raise OpsError("BAD_INPUT", "bank code is 3-16 of 0-9, A-Z", field="bank")
        conditions.append(Outlet.bank_code == flt.bank)
    if flt.status is not None:
        if flt.status not in STATUSES:
            raise OpsError("BAD_INPUT", "status is open or closed", field="status")
        conditions.append(Outlet.status == flt.status)
    if flt.search is not None and not 1 <= len(flt.search) <= MAX_SEARCH:
        raise OpsError("BAD_INPUT", f"search text has 1-{MAX_SEARCH} characters", field="search")
    return conditions


def check_outlet_id(outlet_id: str) -> None:
    if not 1 <= len(outlet_id) <= outlet_rules.LIMITS["id"]:
        raise OpsError("BAD_INPUT", "an outlet id has 1-64 characters", field="id")


async def list_outlets(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    flt: OutletFilter,
    *,
    after: str | None,
    limit: int,
    count_limit: int | None = None,
    request_id: str | None = None,
) -> tuple[list[OutletView], int]:
    """Outlets in `flt.tenant` (its subtree unless `descendants` is off; default: everything the
    caller may read), matching the filters, keyset-paged by outlet id; with how many match, counted
    up to `count_limit` + 1 when one is given (a page that says "more than 1,000" need not count a
    province's 100,000)."""
    if flt.tenant is not None:
        tenant = tenant_input_path(flt.tenant)
        await authorize(sessions, actor, "read", "outlet", tenant, request_id=request_id)
        scopes = [tenant]
    else:
        scopes = [s for s in actor.guard.scopes() if actor.guard.can("read", "outlet", s)]
    conditions = _conditions(flt)
    if not scopes:
        return [], 0
    if flt.descendants:
        conditions.append(in_any_subtree(Tenant.path, scopes))
    else:
        conditions.append(Tenant.path.in_(scopes))
    async with sessions() as session:
        dialect = (await session.connection()).dialect.name
        if flt.search is not None:  # matched literally, through the trigram index where it serves
            conditions.append(contains(dialect, flt.search))
        # SQLite would start from the departments and sort all their outlets for every page (0.2 s
        # for a province's 100,000); `+ 0` keeps it off the outlet's tenant index, so it walks the
        # outlets in code order and stops at the page's end (at worst, an area with no outlet, one
        # pass: 25 ms). PostgreSQL's planner weighs the LIMIT itself.
        on = Tenant.id == (Outlet.tenant_id + 0 if dialect == "sqlite" else Outlet.tenant_id)
        matching = select(Outlet.id).join(Tenant, on).where(*conditions)
        if count_limit is not None:
            matching = matching.limit(count_limit + 1)
        total = (await session.exec(select(func.count()).select_from(matching.subquery()))).one()
        query = select(Outlet, Tenant.path).join(Tenant, on).where(*conditions).order_by(Outlet.id)
        if after is not None:
            query = query.where(Outlet.id > after)
        rows = (await session.exec(query.limit(limit + 1))).all()
    return [OutletView(row, path) for row, path in rows], total


async def locate(sessions: async_sessionmaker[AsyncSession], outlet_id: str) -> OutletView | None:
    async with sessions() as session:
        found = await outlet_with_path(session, outlet_id)
    return OutletView(*found) if found else None


async def reach(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    act: str,
    outlet_id: str,
    found: OutletView | None,
    request_id: str | None,
) -> OutletView | None:
    """FORBIDDEN outside the caller's reach whether or not the outlet exists (DESIGN.md §7); only
    someone whose reach is the whole country learns that an outlet does not exist (None)."""
    path = found.tenant_path if found else ROOT
    if actor.guard.can(act, "outlet", path):
        return found
    why = f"no role allows {act} on outlet in {path}" if found else f"outlet {outlet_id} does not exist"
    raise await deny(
        sessions,
        actor,
        f"outlet.{act}",
        "outlet",
        outlet_id,
        path,
        request_id=request_id,
        why=why,
        message=f"not allowed to {act} outlet {outlet_id}",
    )


async def get_outlet(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, outlet_id: str, *, request_id: str | None = None
) -> OutletView | None:
    check_outlet_id(outlet_id)
    return await reach(sessions, actor, "read", outlet_id, await locate(sessions, outlet_id), request_id)


async def tenants_for(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    paths: list[str],
    *,
    request_id: str | None = None,
) -> list[Tenant | None]:
    """A batch of outlets' tenants (a DataLoader's batch), in the order asked, in one query; None
    where the caller may not read departments (operators and approvers may not)."""
    readable = [path for path in dict.fromkeys(paths) if actor.guard.can("read", "tenant", path)]
    found: dict[str, Tenant] = {}
    if readable:
        async with sessions() as session:
            rows = (await session.exec(select(Tenant).where(Tenant.path.in_(readable)))).all()
        found = {t.path: t for t in rows}
    return [found.get(path) for path in paths]


async def grants_for(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    outlet_ids: list[str],
    *,
    request_id: str | None = None,
) -> list[list[tuple[Grant, str]]]:
    """A batch of outlets' own grants (a DataLoader's batch), each with the granting tenant's path, in
    one query: only those of departments whose grants the caller may read, oldest first."""
    async with sessions() as session:
        rows = (
            await session.exec(
                select(Grant, Tenant.path)
                .join(Tenant, Tenant.id == Grant.tenant_id)
                .where(Grant.outlet_id.in_(outlet_ids))
                .order_by(Grant.id)
            )
        ).all()
    found: dict[str, list[tuple[Grant, str]]] = {outlet_id: [] for outlet_id in outlet_ids}
    for grant, path in rows:
        if actor.guard.can("read", "grant", path):
            found[grant.outlet_id].append((grant, path))
    return [found[outlet_id] for outlet_id in outlet_ids]


def effective_services(business: BusinessPolicy, view: OutletView, at: datetime | None) -> list[str]:
    """Card services the outlet may perform at `at` on cards of its own tenant: its grants, its
    kind's grants and the statutory lines, less statutory lines a ceiling on its path excludes."""
    if at is not None and at.tzinfo is None:
        raise OpsError("BAD_INPUT", "give the time with its time zone", field="at")
    if view.row.status != "open":
        return []
    moment = policy_time(at or datetime.now(UTC))
    subject, tenant, kind = outlet_subject(view.row.id), view.tenant_path, view.row.kind
    found = []
    for service in sorted(business.enforcer.services_for(subject, tenant, tenant, moment)):
        lines = business.enforcer.explain(subject, tenant, tenant, service, moment).allow
        if any(
            not line[-1].startswith(BUILTIN_PREFIX)
            or statutory_allowed(tenant, kind, service, business.ceilings)
            for line in lines
        ):
            found.append(service)
    return found


def tenant_input_path(value: str | None) -> str:
    return parse_tenant(value or "")
