"""The policy as it stood at any time: lines added by then and not yet removed.

`policy_line` holds the lines in force (each with when and by whom it was added); a removed line
moves to `policy_line_ended` with when and by whom it ended (app/store/policy.py). So the lines in
force at `at` are those of the first table added at or before `at`, and those of the second added at
or before `at` and removed after it. A change's removal and addition in one transaction share one
time: at that instant the policy is the one after the change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, String, Table, literal, select, union_all
from sqlalchemy.sql.functions import aggregate_strings
from sqlmodel.ext.asyncio.session import AsyncSession

from app.store.tables import PolicyLine, PolicyLineEnded
from app.store.tables.common import UTCDateTime

VALUES = ("v0", "v1", "v2", "v3", "v4", "v5", "v6")
Where = Callable[[Table], Sequence[ColumnElement[bool]]]


class DatedLine(NamedTuple):
    """A policy line with its life: who added it when, and (if it ended) who removed it when."""

    ptype: str
    rule: tuple[str, ...]
    source: str
    source_id: str
    added_at: datetime
    added_by: str | None
    removed_at: datetime | None
    removed_by: str | None


def _both(at: datetime, columns: Callable[[Table, bool], list[Any]], where: Where):
    live, ended = PolicyLine.__table__, PolicyLineEnded.__table__
    in_force = select(*columns(live, False)).where(live.c.added_at <= at, *where(live))
    was_in_force = select(*columns(ended, True)).where(
        ended.c.added_at <= at, ended.c.removed_at > at, *where(ended)
    )
    return union_all(in_force, was_in_force)


async def lines_at(session: AsyncSession, at: datetime, where: Where) -> list[DatedLine]:
    """The lines in force at `at` that satisfy `where` (conditions on either table's columns)."""

    def columns(table: Table, ended: bool) -> list[Any]:
        return [
            table.c.ptype,
            *(table.c[v] for v in VALUES),
            table.c.source,
            table.c.source_id,
            table.c.added_at,
            table.c.added_by,
            table.c.removed_at if ended else literal(None, UTCDateTime).label("removed_at"),
            table.c.removed_by if ended else literal(None, String).label("removed_by"),
        ]

    rows = (await session.exec(_both(at, columns, where))).all()
    return [DatedLine(r[0], tuple(v for v in r[1:8] if v is not None), *r[8:]) for r in rows]


async def values_at(session: AsyncSession, at: datetime, names: Sequence[str], where: Where) -> list[Any]:
    """Only some columns of the lines in force at `at`, as plain tuples: what a question over
    100,000 outlets reads (their group lines), without the rest of each row."""
    statement = _both(at, lambda table, _: [table.c[name] for name in names], where)
    connection = await session.connection()
    return list(await connection.execute(statement))  # Rows are tuples already


async def subjects_at(session: AsyncSession, at: datetime, where: Where) -> set[str]:
    """The subjects (v0) of the lines in force at `at` that satisfy `where`, as a set. The database
    joins them into one string: 100,000 outlets cost one row to fetch, not 100,000 (subjects are
    `outlet:<id>` or `kind:<kind>`, never holding a newline)."""
    lines = _both(at, lambda table, _: [table.c.v0], where).subquery()
    joined = (await session.exec(select(aggregate_strings(lines.c.v0, "\n")))).scalar()
    return set(joined.split("\n")) if joined else set()
