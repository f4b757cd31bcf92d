"""The figures of the console's overview for the top of the caller's area: grants in force by card
service and by outlet kind for each department directly below it, the business decisions of the
last 30 days by result and reason, and the area's activated cards by channel. A fixed number of
grouped queries whatever the area's size; each figure only for someone who may read what it counts
(grants: `read` on grant; decisions and activations, which come from the audit trail and the cards
of the area: `read` on audit)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.regions import dom_in
from app.ops.auth import Actor, area_top
from app.store.queries import in_subtree
from app.store.tables import AuditEvent, Card, Grant, Outlet, Tenant

DECISION_DAYS = 30


@dataclass(frozen=True)
class Breakdown:
    """Counts per department directly below the top (the top's own under its own path), per key."""

    departments: list[tuple[str, str]]  # (path, name) in path order
    counts: dict[str, Counter]  # department path -> key -> count


@dataclass(frozen=True)
class Dashboard:
    top: str | None
    by_service: Breakdown | None
    by_kind: Breakdown | None
    decisions: Counter | None  # (decision, reason or "") -> count, over DECISION_DAYS
    activations: Counter | None  # channel -> activated cards


async def _departments(session: AsyncSession, top: str) -> list[tuple[str, str]]:
    """The top and the departments directly below it."""
    parent = select(Tenant.id).where(Tenant.path == top).scalar_subquery()
    rows = (
        await session.exec(
            select(Tenant.path, Tenant.name)
            .where((Tenant.path == top) | (Tenant.parent_id == parent))
            .order_by(Tenant.path)
        )
    ).all()
    return [(path, name) for path, name in rows]


async def _grants(session: AsyncSession, top: str) -> tuple[list, list]:
    """Grants in force in the area, counted by (granting department, card service) and by
    (granting department, outlet kind); a few hundred rows at most (departments × services)."""
    in_force = [Grant.state == "active", in_subtree(Tenant.path, top)]
    by_service = (
        await session.exec(
            select(Tenant.path, Grant.service, func.count())
            .join(Tenant, Tenant.id == Grant.tenant_id)
            .where(*in_force)
            .group_by(Tenant.path, Grant.service)
        )
    ).all()
    kind = func.coalesce(Grant.outlet_kind, Outlet.kind)
    by_kind = (
        await session.exec(
            select(Tenant.path, kind, func.count())
            .join(Tenant, Tenant.id == Grant.tenant_id)
            .outerjoin(Outlet, Outlet.id == Grant.outlet_id)
            .where(*in_force)
            .group_by(Tenant.path, kind)
        )
    ).all()
    return list(by_service), list(by_kind)


def _breakdown(departments: list[tuple[str, str]], top: str, rows) -> Breakdown:
    """Rows of (department path, key, count) added up under the department directly below `top`."""
    below = [path for path, _ in departments if path != top]
    counts: dict[str, Counter] = defaultdict(Counter)
    for path, key, count in rows:
        bucket = next((child for child in below if dom_in(path, child)), top)
        counts[bucket][key] += count
    return Breakdown(departments, dict(counts))


async def dashboard(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, *, request_id: str | None = None
) -> Dashboard:
    top = area_top(actor, "tenant") or area_top(actor, "grant")
    if top is None:
        return Dashboard(None, None, None, None, None)
    audits = actor.guard.can("read", "audit", top)
    async with sessions() as session:
        departments = await _departments(session, top)
        by_service = by_kind = decisions = activations = None
        if actor.guard.can("read", "grant", top):
            services, kinds = await _grants(session, top)
            by_service = _breakdown(departments, top, services)
            by_kind = _breakdown(departments, top, kinds)
        if audits:
            since = datetime.now(UTC) - timedelta(days=DECISION_DAYS)
            rows = await session.exec(
                select(AuditEvent.decision, AuditEvent.reason, func.count())
                .where(
                    AuditEvent.at >= since,
                    AuditEvent.decision.is_not(None),
                    in_subtree(AuditEvent.tenant, top),
                )
                .group_by(AuditEvent.decision, AuditEvent.reason)
            )
            decisions = Counter({(decision, reason or ""): count for decision, reason, count in rows.all()})
            rows = await session.exec(
                select(Card.activation_channel, func.count())
                .join(Tenant, Tenant.id == Card.issuing_tenant_id)
                .where(Card.activation_channel.is_not(None), in_subtree(Tenant.path, top))
                .group_by(Card.activation_channel)
            )
            activations = Counter(dict(rows.all()))
    return Dashboard(top, by_service, by_kind, decisions, activations)
