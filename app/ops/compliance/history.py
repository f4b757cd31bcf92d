"""Who could do what, where and when: the compliance questions over the policy's history.

Every answer is computed from the policy lines in force at the time asked (app/store/policy_history.py)
with the business model's own rules (app/authz/past.py, app/authz/decision.py), so a past answer is
what the engine would have answered then, and a present one what it answers now. The caller needs
`read` on `audit` in the tenant asked about (auditors and administrators, in their own subtree); an
outlet outside it is refused exactly like one that does not exist.
"""

from __future__ import annotations

import heapq
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, union_all
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.decision import DOM, GID, SUB, SVC, Decision, OutletFacts, policy_decision
from app.authz.past import Line, Member, is_statutory, member, statutory_lines, who_can
from app.authz.policy_state import BusinessPolicy
from app.authz.projection import policy_time
from app.domain.catalogue import FINANCIAL_SERVICES, OutletKind
from app.domain.ceilings import CeilingTable
from app.domain.outlets import OUTLET_ID
from app.domain.reasons import Reason
from app.domain.regions import ROOT, ancestor_paths
from app.ops.auth import Actor, authorize, deny
from app.ops.compliance.reach import GROUP, able_outlets, ceilings_at
from app.ops.errors import OpsError
from app.ops.grants.views import GrantView, views
from app.ops.inputs import parse_service, parse_tenant
from app.ops.outlets.views import OutletView, locate
from app.store.policy_history import VALUES, lines_at, values_at
from app.store.tables import Outlet, PolicyLine, PolicyLineEnded, Tenant

# A past time is read as of the whole second it names for grant windows (policy times count
# seconds), and to the microsecond for which lines were in force. "Now" may run a little ahead of
# this worker's clock (another worker's, the caller's): that much of the future is still the present.
FUTURE_SLACK = timedelta(seconds=5)


@dataclass(frozen=True)
class Via:
    """What made an outlet able: a grant (with who proposed and approved it, under which document)
    or a statutory rule; and the policy line, with when and by whom it was put in force."""

    grant: GrantView | None
    statutory: str | None  # builtin:... when a statutory rule allowed it
    scope: str  # the tenant whose cards it covers (the line's domain)
    # When its policy line was put in force, and by whom (None: a statutory rule, in force always).
    since: datetime | None = None
    by: str | None = None


@dataclass(frozen=True)
class Held:
    outlet: OutletView
    via: tuple[Via, ...]


@dataclass(frozen=True)
class WhoCan:
    at: datetime
    total: int
    page: list[Held]


@dataclass(frozen=True)
class Service:
    service: str
    via: tuple[Via, ...]


@dataclass(frozen=True)
class Holdings:
    at: datetime
    outlet: OutletView
    open: bool  # whether the outlet was open (had its group line) at `at`
    services: list[Service]


@dataclass(frozen=True)
class Explained:
    at: datetime
    allowed: bool
    reason: Reason | None
    why: str
    via: tuple[Via, ...] = field(default=())


# Per database (engine): once a line exists, the start of history never moves (lines are never
# deleted, only moved to policy_line_ended), so it is read once instead of by a scan of both tables
# on every question.
_HISTORY_BEGAN: weakref.WeakKeyDictionary[Any, datetime] = weakref.WeakKeyDictionary()


async def first_history_time(session: AsyncSession) -> datetime | None:
    """When the platform's first policy line was added (the start of its history)."""
    known = _HISTORY_BEGAN.get(session.bind)
    if known is not None:
        return known
    live, ended = PolicyLine.__table__, PolicyLineEnded.__table__
    both = union_all(select(func.min(live.c.added_at)), select(func.min(ended.c.added_at))).subquery()
    found = (await session.exec(select(func.min(both.c[0])))).scalar()
    if found is not None:
        _HISTORY_BEGAN[session.bind] = found
    return found


async def checked_moment(session: AsyncSession, at: datetime | None, field_name: str = "at") -> datetime:
    """`at` checked: with a zone, not in the future, not before the platform's history began."""
    now = datetime.now(UTC)
    if at is None:
        return now
    if at.tzinfo is None:
        raise OpsError("BAD_INPUT", f"{field_name} needs a time zone", field=field_name)
    if at > now + FUTURE_SLACK:
        raise OpsError(
            "BAD_INPUT",
            f"{field_name} is in the future: history answers the past and the present",
            field=field_name,
        )
    first = await first_history_time(session)
    if first is None or at < first:
        since = first.isoformat() if first else "no change yet"
        raise OpsError(
            "BAD_INPUT", f"{field_name} is before the platform's history begins ({since})", field=field_name
        )
    return at.astimezone(UTC)


async def audited_tenant(
    sessions, actor: Actor, value: str, request_id: str | None, field_name: str = "tenant"
) -> str:
    path = parse_tenant(value, field_name)
    await authorize(sessions, actor, "read", "audit", path, request_id=request_id)
    async with sessions() as session:
        exists = (await session.exec(select(Tenant.id).where(Tenant.path == path))).first()
    if exists is None:
        raise OpsError("NOT_FOUND", f"no tenant {path}", field=field_name)
    return path


async def _outlet(sessions, actor: Actor, outlet_id: str, request_id: str | None) -> OutletView:
    """The outlet, if the caller may audit where it is; FORBIDDEN alike when it does not exist. A
    text that cannot be an outlet code is BAD_INPUT for everyone (it says nothing of any outlet, and
    PostgreSQL cannot even compare a text holding NUL: the fuzzer's INTERNAL)."""
    if not OUTLET_ID.fullmatch(outlet_id):
        raise OpsError("BAD_INPUT", "not an outlet code (a-z, 0-9, '.', '_', '-'; 2-64)", field="outlet")
    found = await locate(sessions, outlet_id)
    path = found.tenant_path if found else ROOT
    if found is not None and actor.guard.can("read", "audit", path):
        return found
    if found is None and actor.guard.can("read", "audit", ROOT):
        raise OpsError("NOT_FOUND", f"no outlet {outlet_id[:64]}", field="outlet")
    raise await deny(
        sessions,
        actor,
        "audit.read",
        "outlet",
        outlet_id[:64],
        path,
        request_id=request_id,
        why="no role allows read on audit there" if found else "the outlet does not exist",
        message=f"not allowed to read the audit of outlet {outlet_id[:64]}",
    )


async def _named_lines(
    session: AsyncSession, at: datetime, subjects: Sequence[str], service: str | None, domains: Sequence[str]
) -> list[Line]:
    """The grant and block lines in force at `at` naming `subjects`, of `service` (None: any) in
    `domains`. Read by subject, which the (ptype, v0) index finds directly; the rest is sifted here."""
    rows = await values_at(session, at, VALUES, lambda t: [t.c.ptype == "p", t.c.v0.in_(subjects)])
    lines = [tuple(v for v in row if v is not None) for row in rows]
    return [line for line in lines if service in (None, line[SVC]) and line[DOM] in domains]


async def _vias(session: AsyncSession, lines: Sequence[Line], at: datetime) -> dict[str, Via]:
    """gid -> how to show it: the grant's view, or the statutory rule, and its line's life at `at`."""
    gids = {line[GID]: line for line in lines}
    granted = [g for g in gids if g.isdigit()]
    subjects = sorted({line[SUB] for line in lines})
    grants = {str(v.grant.id): v for v in await views(session, [int(g) for g in granted])}
    lives = {
        line.rule[GID]: line
        for line in await lines_at(
            session, at, lambda t: [t.c.ptype == "p", t.c.v0.in_(subjects), t.c.v6.in_(granted)]
        )
    }
    vias = {}
    for gid, line in gids.items():
        life = lives.get(gid)
        vias[gid] = Via(
            grants.get(gid),
            gid if is_statutory(line) else None,
            line[1],
            life.added_at if life else None,
            life.added_by if life else None,
        )
    return vias


async def _outlets(session: AsyncSession, ids: Sequence[str]) -> dict[str, OutletView]:
    rows = (
        await session.exec(
            select(Outlet, Tenant.path).join(Tenant, Tenant.id == Outlet.tenant_id).where(Outlet.id.in_(ids))
        )
    ).all()
    return {outlet.id: OutletView(outlet, path) for outlet, path in rows}


async def who_can_do(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    tenant: str,
    service: str,
    at: datetime | None = None,
    *,
    after: str | None = None,
    limit: int = 50,
    request_id: str | None = None,
) -> WhoCan:
    """Every outlet that could perform `service` on cards of `tenant` at `at` (default: now), by
    outlet id, with the grants or statutory rules that made it so."""
    card_tenant = await audited_tenant(sessions, actor, tenant, request_id)
    service = parse_service(service)
    async with sessions() as session:
        moment = await checked_moment(session, at)
        at_policy = policy_time(moment)
        ceilings = await ceilings_at(session, moment)
        able = await able_outlets(session, card_tenant, service, moment, at_policy, ceilings)
        if after is None:
            page_subjects = heapq.nsmallest(limit, able)
        else:
            beyond = "outlet:" + after
            page_subjects = heapq.nsmallest(limit, (s for s in able if s > beyond))
        held = await _explained_page(session, card_tenant, service, moment, page_subjects, ceilings)
        page_ids = [s.removeprefix("outlet:") for s in page_subjects]
        outlets = await _outlets(session, page_ids)
        vias = await _vias(session, [line for o in page_ids for line in held.get(o, ())], moment)
    page = [
        Held(outlets[o], tuple(vias[line[GID]] for line in held[o]))
        for o in page_ids
        if o in outlets and o in held
    ]
    return WhoCan(moment, len(able), page)


async def _explained_page(
    session: AsyncSession,
    card_tenant: str,
    service: str,
    at: datetime,
    subjects: Sequence[str],
    ceilings: CeilingTable,
) -> dict[str, tuple[Line, ...]]:
    """Outlet id -> the lines that let it, for one page of `able_outlets`: `who_can` over the page's
    outlets and the lines naming them or their kinds."""
    if not subjects:
        return {}
    rows = await values_at(session, at, GROUP, lambda t: [t.c.ptype == "g", t.c.v0.in_(subjects)])
    members = [member(r) for r in rows]
    named = sorted({*subjects, *(m.group for m in members)})
    domains = ancestor_paths(card_tenant)
    lines = await _named_lines(session, at, named, service, domains)
    lines += statutory_lines(service, card_tenant)
    return who_can(lines, members, ceilings, service, policy_time(at))


async def _group_at(session: AsyncSession, outlet_id: str, at: datetime) -> Member | None:
    rows = await values_at(session, at, GROUP, lambda t: [t.c.ptype == "g", t.c.v0 == "outlet:" + outlet_id])
    return member(rows[0]) if rows else None


async def what_can_do(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    outlet_id: str,
    at: datetime | None = None,
    *,
    request_id: str | None = None,
) -> Holdings:
    """The card services `outlet_id` held at `at` (default: now), each with what gave it."""
    outlet = await _outlet(sessions, actor, outlet_id, request_id)
    async with sessions() as session:
        moment = await checked_moment(session, at)
        group = await _group_at(session, outlet.row.id, moment)
        if group is None:  # not open at that time
            return Holdings(moment, outlet, False, [])
        subjects = ("outlet:" + group.outlet_id, "kind:" + group.kind)
        domains = ancestor_paths(group.tenant)
        lines = await _named_lines(session, moment, subjects, None, domains)
        lines += [line for line in statutory_lines(None, group.tenant) if line[0] in subjects]
        ceilings = await ceilings_at(session, moment)
        services = sorted({line[2] for line in lines})
        held: list[tuple[str, tuple[Line, ...]]] = []
        for service in services:
            of_service = [line for line in lines if line[2] == service]
            found = who_can(of_service, [group], ceilings, service, policy_time(moment))
            if group.outlet_id in found:
                held.append((service, found[group.outlet_id]))
        vias = await _vias(session, [line for _, ls in held for line in ls], moment)
    return Holdings(
        moment, outlet, True, [Service(s, tuple(vias[line[GID]] for line in ls)) for s, ls in held]
    )


async def explain_decision(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    outlet_id: str,
    card_tenant: str,
    service: str,
    at: datetime | None = None,
    *,
    request_id: str | None = None,
) -> tuple[OutletView, Explained]:
    """The decision the engine would have made at `at` for `outlet_id` on a card of `card_tenant`
    (a card whose state allows the service), with its reason from the one reason enum."""
    outlet = await _outlet(sessions, actor, outlet_id, request_id)
    card_path = await audited_tenant(sessions, actor, card_tenant, request_id, "cardTenant")
    service = parse_service(service)
    async with sessions() as session:
        moment = await checked_moment(session, at)
        group = await _group_at(session, outlet.row.id, moment)
        if group is None:
            return outlet, Explained(moment, False, Reason.NO_GRANT, "the outlet was not open at that time")
        if service in {s.value for s in FINANCIAL_SERVICES} and group.kind != OutletKind.bank_outlet:
            why = f"{service} is done only by bank outlets"
            return outlet, Explained(moment, False, Reason.WRONG_BANK, why)
        subjects = ["outlet:" + group.outlet_id, "kind:" + group.kind]
        domains = sorted(set(ancestor_paths(group.tenant)) | set(ancestor_paths(card_path)))
        lines = await lines_at(session, moment, _explained_lines(service, subjects, domains))
        ceilings = await values_at(session, moment, GROUP, lambda t: [t.c.ptype == "c"])
        policy = BusinessPolicy()
        policy.load(
            [("g", "outlet:" + group.outlet_id, "kind:" + group.kind, group.tenant)]
            + [(line.ptype, *line.rule) for line in lines]
            + [("c", *rule) for rule in ceilings]
        )
        facts = OutletFacts(group.outlet_id, group.kind, group.tenant)
        decision: Decision = policy_decision(policy, facts, card_path, service, policy_time(moment))
        grant_lines = [
            line.rule for line in lines if line.ptype == "p" and line.rule[GID] in decision.grant_ids
        ]
        grant_lines += [
            line for line in statutory_lines(service, card_path) if line[GID] in decision.grant_ids
        ]
        vias = await _vias(session, grant_lines, moment)
    why = str(decision.explanation.get("why", "a grant allows it" if decision.allowed else ""))
    return outlet, Explained(moment, decision.allowed, decision.reason, why, tuple(vias.values()))


def _explained_lines(service: str, subjects: Sequence[str], domains: Sequence[str]):
    def where(table):
        return [
            table.c.ptype.in_(("p", "s")),
            table.c.v2 == service,
            table.c.v0.in_(subjects),
            table.c.v1.in_(domains),
        ]

    return where
