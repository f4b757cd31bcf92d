"""What a compliance officer looks at first in an area: authorizations and credentials that break a
rule of thumb, each with what it is about and why it is listed.

- LINKED_APPROVAL: a grant approved by someone linked to its proposer (one created the other's
  account, or both accounts were created by the same person): the two-person rule held in form only.
- USED_OUTSIDE_WINDOW: a partner call allowed by a grant at a time outside the grant's window.
- UNUSED_GRANT: an active grant older than 90 days that no allowed partner call used in 90 days.
- KIND_CANNOT_HOLD: an active grant of a card service the outlet's kind cannot hold by the catalogue.
- FINANCIAL_NOT_BANK: an active grant of a financial service to an outlet that is not a bank's.
- UNUSED_CREDENTIAL: a live personal token or partner key that acted on nothing for 90 days (its
  audited actions: partner calls, changes and refusals; reads of the admin API are not audited).
- SEPARATION_OF_DUTIES: a person holding both operator and approver roles in overlapping areas.

Usage is read from the audit trail (the events name their credential and, for partner calls, the
grants that allowed them), so it needs no counters on the hot path.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import or_
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.catalogue import DEFAULT_CEILING, FINANCIAL_SERVICES, OutletKind
from app.domain.regions import dom_in
from app.ops.auth import Actor
from app.ops.compliance.history import audited_tenant
from app.store.queries import in_subtree
from app.store.tables import (
    AuditEvent,
    Grant,
    Outlet,
    PartnerKey,
    PersonalToken,
    Principal,
    RoleAssignment,
    Tenant,
)

IDLE = timedelta(days=90)
_FINANCIAL = frozenset(s.value for s in FINANCIAL_SERVICES)
KINDS = (
    "LINKED_APPROVAL",
    "USED_OUTSIDE_WINDOW",
    "UNUSED_GRANT",
    "KIND_CANNOT_HOLD",
    "FINANCIAL_NOT_BANK",
    "UNUSED_CREDENTIAL",
    "SEPARATION_OF_DUTIES",
)


@dataclass(frozen=True)
class Anomaly:
    kind: str  # one of KINDS
    tenant: str  # the department it belongs to
    subject: str  # grant:<id>, principal:<name>, token:<id>, key:<id>
    detail: str


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _grants(session: AsyncSession, tenant: str) -> list[tuple[Grant, str, str | None]]:
    """The area's grants with their tenant's path and their outlet's kind (None for kind grants)."""
    rows = await session.exec(
        select(Grant, Tenant.path, Outlet.kind)
        .join(Tenant, Tenant.id == Grant.tenant_id)
        .outerjoin(Outlet, Outlet.id == Grant.outlet_id)
        .where(in_subtree(Tenant.path, tenant))
        .order_by(Grant.id)
    )
    return list(rows.all())


async def _uses(
    session: AsyncSession, tenant: str, grants: dict[int, Grant]
) -> tuple[dict[int, datetime], list]:
    """From the allowed partner calls on the area's cards: each grant's last use, and the uses
    outside the grant's window (event, grant)."""
    last: dict[int, datetime] = {}
    outside = []
    result = await session.stream(
        select(AuditEvent.id, AuditEvent.at, AuditEvent.detail, AuditEvent.tenant)
        .where(
            AuditEvent.decision == "allow",
            AuditEvent.target_type == "card",
            in_subtree(AuditEvent.tenant, tenant),
        )
        .execution_options(yield_per=5_000)
    )
    async for event_id, at, detail, _ in result:
        at = _aware(at)
        for gid in orjson.loads(detail).get("grant_ids", ()):
            grant = grants.get(int(gid)) if str(gid).isdigit() else None
            if grant is None:
                continue
            if grant.id not in last or last[grant.id] < at:
                last[grant.id] = at
            until = grant.valid_until and _aware(grant.valid_until)
            if at < _aware(grant.valid_from) or (until is not None and at >= until):
                outside.append((event_id, at, grant))
    return last, outside


def _linked(proposer: Principal | None, approver: Principal | None) -> str | None:
    if proposer is None or approver is None:
        return None
    if approver.created_by == proposer.id:
        return f"{proposer.name} created the approver's account"
    if proposer.created_by == approver.id:
        return f"{approver.name} created the proposer's account"
    if proposer.created_by is not None and proposer.created_by == approver.created_by:
        return "both accounts were created by the same person"
    return None


async def _grant_anomalies(session: AsyncSession, tenant: str, now: datetime) -> list[Anomaly]:
    rows = await _grants(session, tenant)
    people = {p.id: p for p in (await session.exec(select(Principal))).all()}
    last, outside = await _uses(session, tenant, {g.id: g for g, _, _ in rows})
    found = []
    for grant, path, outlet_kind in rows:
        subject = f"grant:{grant.id}"
        if grant.approved_by is not None:
            why = _linked(people.get(grant.proposed_by), people.get(grant.approved_by))
            if why:
                found.append(Anomaly("LINKED_APPROVAL", path, subject, f"approved by a linked person: {why}"))
        if grant.state != "active":
            continue
        kind = outlet_kind or grant.outlet_kind or ""
        if grant.service in _FINANCIAL and kind != OutletKind.bank_outlet:  # the more specific finding
            found.append(Anomaly("FINANCIAL_NOT_BANK", path, subject, f"{grant.service} granted to a {kind}"))
        elif kind in OutletKind.__members__ and grant.service not in {
            s.value for s in DEFAULT_CEILING[OutletKind(kind)]
        }:
            found.append(Anomaly("KIND_CANNOT_HOLD", path, subject, f"a {kind} cannot hold {grant.service}"))
        used = last.get(grant.id)
        if _aware(grant.created_at) < now - IDLE and (used is None or used < now - IDLE):
            when = f"last used {used.date().isoformat()}" if used else "never used"
            found.append(Anomaly("UNUSED_GRANT", path, subject, f"active for over 90 days, {when}"))
    for event_id, at, grant in outside:
        path = next(p for g, p, _ in rows if g.id == grant.id)
        found.append(
            Anomaly(
                "USED_OUTSIDE_WINDOW",
                path,
                f"grant:{grant.id}",
                f"audit event {event_id} at {at.isoformat()} was allowed outside the grant's window",
            )
        )
    return found


async def _last_acts(session: AsyncSession, credentials: list[str]) -> dict[str, datetime]:
    found: dict[str, datetime] = {}
    for start in range(0, len(credentials), 1_000):
        chunk = credentials[start : start + 1_000]
        rows = await session.exec(
            select(AuditEvent.credential, func.max(AuditEvent.at))
            .where(AuditEvent.credential.in_(chunk))
            .group_by(AuditEvent.credential)
        )
        found.update((credential, _aware(at)) for credential, at in rows)
    return found


async def _credential_anomalies(session: AsyncSession, tenant: str, now: datetime) -> list[Anomaly]:
    live = or_(PartnerKey.expires_at.is_(None), PartnerKey.expires_at > now)
    # From the keys (few) to their outlets and departments: `+ 0` keeps the planner from starting at
    # the area's departments and walking their 100,000 outlets to find the few with a key.
    keys = (
        await session.exec(
            select(PartnerKey, Tenant.path)
            .join(Outlet, Outlet.id == PartnerKey.outlet_id)
            .join(Tenant, Tenant.id == Outlet.tenant_id + 0)
            .where(in_subtree(Tenant.path, tenant), PartnerKey.revoked_at.is_(None), live)
        )
    ).all()
    holders = (
        await session.exec(
            select(RoleAssignment.principal_id, Tenant.path)
            .join(Tenant, Tenant.id == RoleAssignment.tenant_id)
            .where(in_subtree(Tenant.path, tenant))
        )
    ).all()
    home = {pid: path for pid, path in holders}
    token_live = or_(PersonalToken.expires_at.is_(None), PersonalToken.expires_at > now)
    tokens = (
        await session.exec(
            select(PersonalToken).where(
                PersonalToken.principal_id.in_(list(home)), PersonalToken.revoked_at.is_(None), token_live
            )
        )
    ).all()
    subjects = [(f"key:{k.id}", path, k.created_at) for k, path in keys] + [
        (f"token:{t.id}", home[t.principal_id], t.created_at) for t in tokens
    ]
    last = await _last_acts(session, [s for s, _, _ in subjects])
    found = []
    for subject, path, created in subjects:
        acted = last.get(subject)
        if _aware(created) < now - IDLE and (acted is None or acted < now - IDLE):
            when = f"last acted {acted.date().isoformat()}" if acted else "never acted"
            found.append(Anomaly("UNUSED_CREDENTIAL", path, subject, f"live and unused for 90 days, {when}"))
    return found


async def _duty_anomalies(session: AsyncSession, tenant: str) -> list[Anomaly]:
    rows = (
        await session.exec(
            select(Principal.name, RoleAssignment.role, Tenant.path)
            .join(RoleAssignment, RoleAssignment.principal_id == Principal.id)
            .join(Tenant, Tenant.id == RoleAssignment.tenant_id)
            .where(RoleAssignment.role.in_(("operator", "approver")), Principal.active)
        )
    ).all()
    roles: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for name, role, path in rows:
        roles[name][role].append(path)
    found = []
    for name, held in sorted(roles.items()):
        for operates in held.get("operator", ()):
            for approves in held.get("approver", ()):
                overlap = (
                    operates
                    if dom_in(operates, approves)
                    else approves
                    if dom_in(approves, operates)
                    else None
                )
                if overlap is not None and (dom_in(overlap, tenant) or dom_in(tenant, overlap)):
                    found.append(
                        Anomaly(
                            "SEPARATION_OF_DUTIES",
                            overlap,
                            f"principal:{name}",
                            f"operator in {operates} and approver in {approves}",
                        )
                    )
    return found


async def anomalies(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    tenant: str,
    *,
    request_id: str | None = None,
) -> list[Anomaly]:
    """Every anomaly of `tenant`'s area, by kind (in KINDS order) and subject."""
    path = await audited_tenant(sessions, actor, tenant, request_id)
    now = datetime.now(UTC)
    async with sessions() as session:
        found = (
            await _grant_anomalies(session, path, now)
            + await _credential_anomalies(session, path, now)
            + await _duty_anomalies(session, path)
        )
    return sorted(found, key=lambda a: (KINDS.index(a.kind), a.subject))
