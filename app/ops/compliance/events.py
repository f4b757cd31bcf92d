"""The audit trail as auditors read it: events of their subtree, filtered and paged, and the history
of grants and ceilings (what changed, who proposed, who approved, under which document).

Everything the trail holds was written masked (no full ID or bank card number, PIN, token or key:
DESIGN.md §3, §6), so events are shown as stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_
from sqlalchemy import select as sa_select
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select

from app.domain.reasons import Reason
from app.ops.auth import Actor, authorize
from app.ops.compliance.labels import cst_text
from app.ops.errors import OpsError
from app.ops.grants.views import GrantView, views
from app.ops.inputs import check_length, parse_tenant
from app.store.queries import in_any_subtree
from app.store.tables import AuditEvent

MAX_FILTER = 96
DECISIONS = ("allow", "deny")
# The actions that change grants and ceilings (grant.create, grant.approve, grant.revoked, ...).
GRANT_ACTIONS = ("grant.", "ceiling.")


@dataclass(frozen=True)
class EventFilter:
    """All given conditions hold. `action` ending in "." is a prefix ("grant." is every grant action);
    `outlet` finds the outlet's own calls (its partner key acting) and changes made to it."""

    tenant: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    outlet: str | None = None
    action: str | None = None
    decision: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class GrantChange:
    event: AuditEvent
    grant: GrantView | None  # the grant changed, when the event is about one grant


def check_range(since: datetime | None, until: datetime | None, names=("from", "to")) -> None:
    for value, name in zip((since, until), names, strict=True):
        if value is not None and value.tzinfo is None:
            raise OpsError("BAD_INPUT", f"{name} needs a time zone", field=name)
    if since is not None and until is not None and since >= until:
        raise OpsError("BAD_INPUT", f"{names[0]} must be before {names[1]}", field=names[0])


async def audit_scopes(sessions, actor: Actor, tenant: str | None, request_id: str | None) -> list[str]:
    """The subtrees whose chains the caller reads: `tenant` (refused outside their reach), or all
    they may audit."""
    if tenant is not None:
        path = parse_tenant(tenant)
        await authorize(sessions, actor, "read", "audit", path, request_id=request_id)
        return [path]
    return [s for s in actor.guard.scopes() if actor.guard.can("read", "audit", s)]


def _conditions(filters: EventFilter, scopes: list[str], actions: tuple[str, ...]) -> list[ColumnElement]:
    check_range(filters.since, filters.until)
    for name in ("actor", "outlet", "action", "reason"):
        check_length(name, getattr(filters, name), MAX_FILTER)
    t = AuditEvent.__table__.c
    conditions: list[ColumnElement] = [in_any_subtree(t.tenant, scopes)]
    if filters.since is not None:
        conditions.append(t.at >= filters.since)
    if filters.until is not None:
        conditions.append(t.at < filters.until)
    if filters.actor is not None:
        conditions.append(t.actor == filters.actor)
    if filters.outlet is not None:
        conditions.append(
            or_(
                t.actor == "outlet:" + filters.outlet,
                and_(t.target_type == "outlet", t.target_id == filters.outlet),
            )
        )
    wanted = (filters.action,) if filters.action is not None else actions
    if wanted:
        conditions.append(
            or_(
                *(
                    t.action.startswith(a, autoescape=True) if a.endswith(".") else t.action == a
                    for a in wanted
                )
            )
        )
    if filters.decision is not None:
        if filters.decision not in DECISIONS:
            raise OpsError("BAD_INPUT", "decision is allow or deny", field="decision")
        conditions.append(t.decision == filters.decision)
    if filters.reason is not None:
        if filters.reason not in Reason.__members__:
            raise OpsError("BAD_INPUT", f"{filters.reason!r} is not a reason code", field="reason")
        conditions.append(t.reason == filters.reason)
    return conditions


async def list_events(
    sessions: async_sessionmaker,
    actor: Actor,
    filters: EventFilter,
    *,
    after: str | None = None,
    limit: int = 50,
    actions: tuple[str, ...] = (),
    newest_first: bool = False,
    request_id: str | None = None,
) -> tuple[list[AuditEvent], int]:
    """Events of the caller's audit reach matching `filters`, in the order they were written (by id;
    `newest_first`: the other way), keyset-paged after the event id `after`."""
    scopes = await audit_scopes(sessions, actor, filters.tenant, request_id)
    conditions = _conditions(filters, scopes, actions)
    if after is not None and not (after.isascii() and after.isdigit() and len(after) <= 19):
        raise OpsError("BAD_INPUT", "not a cursor from this list", field="after")
    if not scopes:
        return [], 0
    async with sessions() as session:
        total = (await session.exec(select(func.count()).select_from(AuditEvent).where(*conditions))).one()
        query = select(AuditEvent).where(*conditions)
        if after is not None:
            query = query.where(AuditEvent.id < int(after) if newest_first else AuditEvent.id > int(after))
        order = AuditEvent.id.desc() if newest_first else AuditEvent.id
        rows = (await session.exec(query.order_by(order).limit(limit))).all()
    return list(rows), total


async def grant_history(
    sessions: async_sessionmaker,
    actor: Actor,
    tenant: str,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    after: str | None = None,
    limit: int = 50,
    request_id: str | None = None,
) -> tuple[list[GrantChange], int]:
    """Every change to grants and ceilings in `tenant`'s subtree between `since` and `until`: the
    event (what, who, before and after) and, for one grant, who proposed and approved it under which
    document."""
    events, total = await list_events(
        sessions,
        actor,
        EventFilter(tenant=tenant, since=since, until=until),
        after=after,
        limit=limit,
        actions=GRANT_ACTIONS,
        request_id=request_id,
    )
    ids = {int(e.target_id) for e in events if e.target_type == "grant" and e.target_id.isdigit()}
    async with sessions() as session:
        grants = {v.grant.id: v for v in await views(session, ids)}
    return [
        GrantChange(e, grants.get(int(e.target_id)) if e.target_id.isdigit() else None) for e in events
    ], total


EVENT_HEADERS = [
    "编号",
    "部门",
    "链内序号",
    "时间（北京时间）",
    "操作人",
    "凭证",
    "操作",
    "对象类型",
    "对象",
    "结果",
    "原因",
    "详情",
    "请求号",
    "哈希",
]
_DECISION_NAMES = {"allow": "允许", "deny": "拒绝"}


def event_cells(event: Mapping[str, Any]) -> list[str]:
    """One event as a row of EVENT_HEADERS (times in China Standard Time, detail as its JSON)."""
    return [
        str(event["id"]),
        event["tenant"],
        str(event["seq"]),
        cst_text(event["at"]),
        event["actor"],
        event["credential"] or "",
        event["action"],
        event["target_type"],
        event["target_id"],
        _DECISION_NAMES.get(event["decision"] or "", ""),
        event["reason"] or "",
        event["detail"],
        event["request_id"] or "",
        event["hash"],
    ]


async def stream_events(
    sessions: async_sessionmaker,
    actor: Actor,
    filters: EventFilter,
    *,
    request_id: str | None = None,
    batch: int = 5_000,
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every event `list_events` would page through, in batches, for a download that streams."""
    scopes = await audit_scopes(sessions, actor, filters.tenant, request_id)
    conditions = _conditions(filters, scopes, ())
    if not scopes:
        return
    table = AuditEvent.__table__
    async with sessions() as session:
        result = await session.stream(
            sa_select(*table.c).where(*conditions).order_by(table.c.id).execution_options(yield_per=batch)
        )
        async for rows in result.mappings().partitions(batch):
            yield [dict(row) for row in rows]


# How far back each poll looks again for events that committed after a later one (on PostgreSQL
# ids are taken at insert and transactions commit in any order); events already sent are skipped.
LOOKBACK_IDS = 1_000


async def follow_events(
    sessions: async_sessionmaker,
    who: Callable[[], Awaitable[Actor]],
    tenant: str | None = None,
    *,
    poll_seconds: float = 0.5,
    request_id: str | None = None,
) -> AsyncIterator[AuditEvent]:
    """The events of the caller's audit reach (or of `tenant`'s chains) as they commit, whichever
    worker or process wrote them: the database is polled, not this process's memory. `who` is asked
    again before every poll, so a revoked token or a removed role ends the stream."""
    actor = await who()
    scopes = await audit_scopes(sessions, actor, tenant, request_id)
    if not scopes:
        raise OpsError("FORBIDDEN", "no role lets you read audit events")
    conditions = _conditions(EventFilter(), scopes, ())
    sent: set[int] = set()  # the ids sent (or older than the subscription) within the lookback
    async with sessions() as session:
        last = (await session.exec(select(func.coalesce(func.max(AuditEvent.id), 0)))).one()
        # What was committed before the subscription is not news: only later commits are sent.
        sent.update(
            (await session.exec(select(AuditEvent.id).where(AuditEvent.id > last - LOOKBACK_IDS))).all()
        )
    while True:
        async with sessions() as session:
            rows = (
                await session.exec(
                    select(AuditEvent)
                    .where(*conditions, AuditEvent.id > last - LOOKBACK_IDS)
                    .order_by(AuditEvent.id)
                    .limit(500)
                )
            ).all()
        fresh = [row for row in rows if row.id > last or row.id not in sent]
        for row in fresh:
            sent.add(row.id)
            last = max(last, row.id)
            yield row
        sent = {i for i in sent if i > last - LOOKBACK_IDS}
        if len(rows) < 500:
            await asyncio.sleep(poll_seconds)
        actor = await who()
        if not all(actor.guard.can("read", "audit", scope) for scope in scopes):
            raise OpsError("FORBIDDEN", "your roles no longer let you read these audit events")
