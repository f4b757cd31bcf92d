"""The business-plane policy projection (`policy_line`) and its change log (`policy_change`).

Rows of `policy_line` are the current policy; every add or remove is also appended to
`policy_change`, which each worker tails to update its in-memory enforcer. Appends are serialised
(an advisory lock on PostgreSQL, SQLite's single writer otherwise) so that log ids become visible
in id order: a tailer reading `id > last_seen` never skips an entry that commits late.

Besides Casbin's `p` and `g` lines the projection carries two kinds of our own, which workers also
need and which travel through the same log: `c` lines hold ceilings and `s` lines mark suspended
grants (so a denial can say SUSPENDED or ABOVE_CEILING without asking the database).

A worker keeps the log entries its own transactions commit (`keep_committed`) and applies them
from memory instead of reading them back from the log (100,000 entries after a bulk grant).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import NamedTuple
from weakref import WeakKeyDictionary

import orjson
from sqlalchemy import (
    Connection,
    Engine,
    String,
    delete,
    event,
    func,
    insert,
    literal,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session, SessionTransaction
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.store.column_insert import insert_columns
from app.store.db import WriteSession
from app.store.slices import in_slices, mapped
from app.store.tables import PolicyChange, PolicyLine, PolicyLineEnded
from app.store.tables.common import UTCDateTime, utcnow

CASBIN_PTYPES = ("p", "g")
NOTIFY_CHANNEL = "ssc_policy"
# Any constant works; it only has to be the same for every writer of the log.
POLICY_LOG_LOCK_KEY = 0x55C_0001

Rule = tuple[str, ...]
_RULE_COLUMNS = ("v0", "v1", "v2", "v3", "v4", "v5", "v6")


class ProjectedLine(NamedTuple):
    """One policy line and the row it projects ("grant", "outlet", "block", "ceiling"), by id. A
    named tuple: a bulk grant builds 100,000 of them, and a frozen dataclass costs ten times more."""

    ptype: str
    rule: Rule
    source: str
    source_id: str

    def row(self) -> dict[str, str | None]:
        values = list(self.rule) + [None] * (len(_RULE_COLUMNS) - len(self.rule))
        return {
            "ptype": self.ptype,
            "source": self.source,
            "source_id": self.source_id,
            **dict(zip(_RULE_COLUMNS, values, strict=True)),
        }


class Change(NamedTuple):
    """One entry of the change log. A named tuple: a bulk grant is replayed as 100,000 of them, and a
    frozen dataclass costs several times more to build."""

    id: int
    op: str  # "add" | "remove"
    ptype: str
    rule: Rule


def line_rule(line) -> Rule:
    values = (line.v0, line.v1, line.v2, line.v3, line.v4, line.v5, line.v6)
    return tuple(v for v in values if v is not None)


def _change_rows(op: str, changes: Iterable[tuple[str, Rule]]) -> list[dict]:
    now = utcnow()
    return [{"op": op, "ptype": p, "rule": orjson.dumps(list(r)).decode(), "at": now} for p, r in changes]


# Taking the lock and queuing the wake-up in one statement: NOTIFY is delivered only at commit.
_PG_LOCK_AND_NOTIFY = text("select pg_advisory_xact_lock(:k), pg_notify(:channel, '')").bindparams(
    k=POLICY_LOG_LOCK_KEY, channel=NOTIFY_CHANNEL
)


async def _lock_log(session: AsyncSession) -> None:
    if session.bind.dialect.name == "postgresql":
        await session.exec(_PG_LOCK_AND_NOTIFY)


class CommittedHere:
    """The log entries that this process committed through one engine, kept from their commit until
    the engine's tailer has applied them, so that it applies them from memory instead of reading
    them back (100,000 entries after a bulk grant). A transaction's entries have consecutive ids
    (appends are serialised and every append takes the lock); segments may arrive out of order (the
    after-commit hooks of two transactions race), so they are kept sorted by first id.

    A segment is also known while it commits (`committing`, from before its commit until its
    transaction ends): between the database's commit and the after-commit hook, the tailer (woken by
    NOTIFY, or polling) would otherwise read the segment back from the log. It reads up to it instead
    (`held_back`) — unless it waits longer than `COMMITTING_S` (a hook lost with its connection), when
    the log shows the segment if it was committed."""

    COMMITTING_S = 30.0

    def __init__(self) -> None:
        self._segments: list[list[Change]] = []
        self._committing: dict[int, float] = {}  # first id -> when its commit began

    def committing(self, first_id: int) -> None:
        self._committing[first_id] = time.monotonic()

    def settled(self, first_id: int) -> None:
        self._committing.pop(first_id, None)

    def held_back(self, last_id: int) -> int | None:
        """The first id of the earliest segment after `last_id` still committing, or None."""
        now = time.monotonic()
        for first_id, began in list(self._committing.items()):
            if first_id <= last_id or now - began > self.COMMITTING_S:
                del self._committing[first_id]
        return min(self._committing, default=None)

    def add(self, segment: list[Change]) -> None:
        bisect.insort(self._segments, segment, key=lambda s: s[0].id)

    def after(self, last_id: int) -> list[Change] | None:
        """The first kept segment with entries after `last_id` (forgetting those before it), or None."""
        while self._segments and self._segments[0][-1].id <= last_id:
            self._segments.pop(0)
        return self._segments[0] if self._segments else None


_kept: WeakKeyDictionary[Engine, CommittedHere] = WeakKeyDictionary()
_PENDING = "policy_changes_pending"
_COMMITTING = "policy_changes_committing"


def keep_committed(engine: AsyncEngine) -> CommittedHere:
    """From now on keep what transactions through `engine` commit to the log (the tailer of that
    engine's worker calls this once; processes without a tailer keep nothing)."""
    return _kept.setdefault(engine.sync_engine, CommittedHere())


async def _log(session: AsyncSession, op: str, entries: list[tuple[str, Rule]]) -> None:
    """Append log entries; remember them on the session when its engine keeps what it commits."""
    columns = {"ptype": [p for p, _ in entries], "rule": await mapped(_rule_text, entries)}
    await insert_columns(session, PolicyChange.__table__, columns, {"op": op, "at": utcnow()})
    if session.sync_session.get_bind() not in _kept:
        return
    last = await last_change_id(session)
    first = last - len(entries) + 1
    pending = session.sync_session.info.setdefault(_PENDING, [])
    pending += await mapped(
        lambda numbered: Change(numbered[0], op, *numbered[1]), list(enumerate(entries, first))
    )


def _rule_text(entry: tuple[str, Rule]) -> str:
    return orjson.dumps(entry[1]).decode()


@event.listens_for(WriteSession, "before_commit")
def _committing(session: Session) -> None:
    pending = session.info.get(_PENDING)
    kept = _kept.get(session.get_bind())
    if pending and kept is not None:
        kept.committing(pending[0].id)
        session.info[_COMMITTING] = pending[0].id


@event.listens_for(WriteSession, "after_transaction_end")
def _settled(session: Session, transaction: SessionTransaction) -> None:
    """After the commit's hook (or a rollback): the segment is kept, or gone."""
    if transaction.parent is None and _COMMITTING in session.info:
        kept = _kept.get(session.get_bind())
        if kept is not None:
            kept.settled(session.info.pop(_COMMITTING))


@event.listens_for(WriteSession, "after_commit")
def _committed(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    kept = _kept.get(session.get_bind())
    if pending and kept is not None:
        kept.add(pending)


@event.listens_for(WriteSession, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)


async def add_lines(session: AsyncSession, lines: Sequence[ProjectedLine], *, by: str) -> None:
    """Insert lines, dated and signed by the actor `by`, and their log entries with two statements
    (bulk grants are large)."""
    if not lines:
        return
    await _lock_log(session)
    columns: dict[str, list] = {name: [] for name in ("ptype", "source", "source_id", *_RULE_COLUMNS)}
    async for part in in_slices(lines):
        padding = len(_RULE_COLUMNS)
        rows = ((x.ptype, x.source, x.source_id, *x.rule, *(None,) * (padding - len(x.rule))) for x in part)
        for column, values in zip(columns.values(), zip(*rows, strict=True), strict=True):
            column += values
    await insert_columns(session, PolicyLine.__table__, columns, {"added_at": utcnow(), "added_by": by})
    await _log(session, "add", [(x.ptype, x.rule) for x in lines])


async def remove_source_lines(
    session: AsyncSession,
    *,
    source: str,
    source_ids: Iterable[str],
    by: str,
    ptypes: Sequence[str] | None = None,
) -> int:
    """Remove every line projected from the given rows, ended by the actor `by` (they move to
    `policy_line_ended`); returns how many were removed."""
    ids = list(source_ids)
    if not ids:
        return 0
    columns = (
        PolicyLine.id,
        PolicyLine.ptype,
        PolicyLine.v0,
        PolicyLine.v1,
        PolicyLine.v2,
        PolicyLine.v3,
        PolicyLine.v4,
        PolicyLine.v5,
        PolicyLine.v6,
    )
    lines = []
    # Chunked: SQLite binds at most 32,766 parameters per statement (a ceiling can touch 100k grants).
    for start in range(0, len(ids), 10_000):
        query = select(*columns).where(
            PolicyLine.source == source, PolicyLine.source_id.in_(ids[start : start + 10_000])
        )
        if ptypes is not None:
            query = query.where(PolicyLine.ptype.in_(ptypes))
        lines += (await session.exec(query)).all()
    if not lines:
        return 0
    await _lock_log(session)
    await _log(session, "remove", [(x.ptype, line_rule(x)) for x in lines])
    line_ids = [line.id for line in lines]
    connection = await session.connection()
    now = utcnow()
    for start in range(0, len(line_ids), 10_000):
        await connection.run_sync(end_lines_sync, line_ids[start : start + 10_000], now, by)
    return len(lines)


_LINE_FIELDS = (
    "ptype",
    "v0",
    "v1",
    "v2",
    "v3",
    "v4",
    "v5",
    "v6",
    "source",
    "source_id",
    "added_at",
    "added_by",
)


def end_lines_sync(connection: Connection, line_ids: Sequence[int], at: datetime, by: str | None) -> None:
    """Move lines from `policy_line` to `policy_line_ended`, ended at `at` by `by`."""
    line, ended = PolicyLine.__table__, PolicyLineEnded.__table__
    moved = select(
        *(line.c[name] for name in _LINE_FIELDS),
        literal(at, UTCDateTime).label("removed_at"),
        literal(by, String).label("removed_by"),
    ).where(line.c.id.in_(line_ids))
    connection.execute(insert(ended).from_select([*_LINE_FIELDS, "removed_at", "removed_by"], moved))
    connection.execute(delete(line).where(line.c.id.in_(line_ids)))


def log_changes_sync(connection: Connection, op: str, changes: Sequence[tuple[str, Rule]]) -> None:
    """The same log append for synchronous callers (the Casbin adapter)."""
    if not changes:
        return
    if connection.dialect.name == "postgresql":
        connection.execute(_PG_LOCK_AND_NOTIFY)
    connection.execute(PolicyChange.__table__.insert(), _change_rows(op, changes))


async def last_change_id(session: AsyncSession) -> int:
    return (await session.exec(select(func.coalesce(func.max(PolicyChange.id), 0)))).one()


async def change_entry(session: AsyncSession, change_id: int) -> tuple[str, str, str, str] | None:
    """The log entry `change_id` as (op, ptype, rule, at in ISO 8601), or None if there is none."""
    row = (
        await session.exec(
            select(PolicyChange.op, PolicyChange.ptype, PolicyChange.rule, PolicyChange.at).where(
                PolicyChange.id == change_id
            )
        )
    ).first()
    return None if row is None else (row[0], row[1], row[2], row[3].isoformat())


async def stream_lines(session: AsyncSession, chunk: int = 50_000) -> AsyncIterator[list[tuple[str, ...]]]:
    """Every line as `(ptype, *rule)`, in chunks: a million ORM objects at once would cost
    gigabytes, plain tuples streamed from a server-side cursor cost little more than the index."""
    columns = (
        PolicyLine.ptype,
        PolicyLine.v0,
        PolicyLine.v1,
        PolicyLine.v2,
        PolicyLine.v3,
        PolicyLine.v4,
        PolicyLine.v5,
        PolicyLine.v6,
    )
    result = await session.stream(select(*columns).order_by(PolicyLine.id).execution_options(yield_per=chunk))
    async for rows in result.partitions(chunk):
        yield [tuple(v for v in row if v is not None) for row in rows]


async def snapshot(session: AsyncSession) -> tuple[list[tuple[str, ...]], int]:
    """Every line plus the log id it reflects (see `PolicyTailer.load` for why the id comes first)."""
    last = await last_change_id(session)
    return [line async for chunk in stream_lines(session) for line in chunk], last


async def changes_after(
    session: AsyncSession, last_id: int, limit: int = 10_000, before: int | None = None
) -> list[Change]:
    """Log entries after `last_id` (and before `before`, if given), in id order."""
    # Plain columns, not ORM objects: a bulk grant of 100k outlets is 100k log rows to replay.
    query = (
        select(PolicyChange.id, PolicyChange.op, PolicyChange.ptype, PolicyChange.rule)
        .where(PolicyChange.id > last_id)
        .order_by(PolicyChange.id)
        .limit(limit)
    )
    if before is not None:
        query = query.where(PolicyChange.id < before)
    rows = (await session.exec(query)).all()
    loads = orjson.loads
    return [Change(i, op, ptype, tuple(loads(rule))) for i, op, ptype, rule in rows]
