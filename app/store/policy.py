"""The business-plane policy projection (`policy_line`) and its change log (`policy_change`).

Rows of `policy_line` are the current policy; every add or remove is also appended to
`policy_change`, which each worker tails to update its in-memory enforcer. Appends are serialised
(an advisory lock on PostgreSQL, SQLite's single writer otherwise) so that log ids become visible
in id order: a tailer reading `id > last_seen` never skips an entry that commits late.

Besides Casbin's `p` and `g` lines the projection carries two kinds of our own, which workers also
need and which travel through the same log: `c` lines hold ceilings and `s` lines mark suspended
grants (so a denial can say SUSPENDED or ABOVE_CEILING without asking the database).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy import Connection, delete, func, text
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.store.tables import PolicyChange, PolicyLine
from app.store.tables.common import utcnow

CASBIN_PTYPES = ("p", "g")
NOTIFY_CHANNEL = "ssc_policy"
# Any constant works; it only has to be the same for every writer of the log.
POLICY_LOG_LOCK_KEY = 0x55C_0001

Rule = tuple[str, ...]


@dataclass(frozen=True)
class ProjectedLine:
    """One policy line and the row it projects ("grant", "outlet", "block", "ceiling"), by id."""

    ptype: str
    rule: Rule
    source: str
    source_id: str

    def row(self) -> dict[str, str | None]:
        values = list(self.rule) + [None] * (7 - len(self.rule))
        return {
            "ptype": self.ptype,
            "source": self.source,
            "source_id": self.source_id,
            **{f"v{i}": v for i, v in enumerate(values)},
        }


@dataclass(frozen=True)
class Change:
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


async def add_lines(session: AsyncSession, lines: Sequence[ProjectedLine]) -> None:
    """Insert lines and their log entries with two executemany statements (bulk grants are large)."""
    if not lines:
        return
    await _lock_log(session)
    # Core inserts (the table, not the ORM class): the ORM's bulk path costs ~2x per row.
    await session.exec(PolicyLine.__table__.insert(), params=[line.row() for line in lines])
    await session.exec(
        PolicyChange.__table__.insert(), params=_change_rows("add", ((x.ptype, x.rule) for x in lines))
    )


async def remove_source_lines(
    session: AsyncSession, *, source: str, source_ids: Iterable[str], ptypes: Sequence[str] | None = None
) -> int:
    """Remove every line projected from the given rows; returns how many were removed."""
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
    await session.exec(
        PolicyChange.__table__.insert(),
        params=_change_rows("remove", ((x.ptype, line_rule(x)) for x in lines)),
    )
    line_ids = [line.id for line in lines]
    for start in range(0, len(line_ids), 10_000):
        await session.exec(
            delete(PolicyLine)
            .where(PolicyLine.id.in_(line_ids[start : start + 10_000]))
            .execution_options(synchronize_session=False)
        )
    return len(lines)


def log_changes_sync(connection: Connection, op: str, changes: Sequence[tuple[str, Rule]]) -> None:
    """The same log append for synchronous callers (the Casbin adapter)."""
    if not changes:
        return
    if connection.dialect.name == "postgresql":
        connection.execute(_PG_LOCK_AND_NOTIFY)
    connection.execute(PolicyChange.__table__.insert(), _change_rows(op, changes))


async def last_change_id(session: AsyncSession) -> int:
    return (await session.exec(select(func.coalesce(func.max(PolicyChange.id), 0)))).one()


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


async def changes_after(session: AsyncSession, last_id: int, limit: int = 10_000) -> list[Change]:
    # Plain columns, not ORM objects: a bulk grant of 100k outlets is 100k log rows to replay.
    rows = (
        await session.exec(
            select(PolicyChange.id, PolicyChange.op, PolicyChange.ptype, PolicyChange.rule)
            .where(PolicyChange.id > last_id)
            .order_by(PolicyChange.id)
            .limit(limit)
        )
    ).all()
    return [Change(i, op, ptype, tuple(orjson.loads(rule))) for i, op, ptype, rule in rows]
