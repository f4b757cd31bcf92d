"""Reading the audit chains through SQLAlchemy's connection, a batch at a time: in (tenant, seq)
order for verification's ordered walk, and whole events for exports and archives.

A million events must verify in a few seconds with flat memory, and SQLAlchemy's row machinery costs
more than the check itself, so the chains are read through the raw DB-API connection underneath: a
server-side cursor on PostgreSQL, `fetchmany` on SQLite. The SQL, the columns and the rebuild of an
event's hashed content are app/store/audit_scan.py's, which also reads the events in written order
for verification's first pass.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select

from app.domain.audit_chain import Row
from app.store.audit_scan import EVENT_COLUMNS, content_sql, event_of, mark, rebuilt_content, subtree
from app.store.tables import AuditEvent


def _cursor(connection: Connection, name: str):
    raw = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        cursor = raw.cursor(name=name)  # server-side: the rows stay on the server until fetched
        cursor.itersize = 10_000
        return cursor
    return raw.cursor()


def chain_rows(
    connection: Connection,
    under: str | None = None,
    batch: int = 10_000,
    *,
    tenants: Collection[str] | None = None,
) -> Iterator[list[Row]]:
    """The events of the chains of `under` (all: None), or only of `tenants`, in (tenant, seq) order,
    in batches of rows (tenant, seq, prev_hash, hash, content, row id) for `ChainWalk.feed`."""
    dialect = connection.dialect.name
    m = mark(dialect)
    where, params = subtree(dialect, under)
    if tenants is not None:
        where += f" AND tenant IN ({', '.join([m] * len(tenants))})" if tenants else " AND 1 = 0"
        params += tuple(sorted(tenants))
    cursor = _cursor(connection, "ssc_audit_walk")
    try:
        cursor.execute(
            f"SELECT tenant, seq, prev_hash, hash, {content_sql(dialect)}, id FROM audit_event "
            f"WHERE {where} ORDER BY tenant, seq",
            params,
        )
        while rows := cursor.fetchmany(batch):
            yield rows
            del rows  # one batch in memory at a time (the caller drops its own reference too)
    finally:
        cursor.close()


def id_span(connection: Connection) -> tuple[int, int]:
    """(lowest id - 1, highest id) of the audit events: the (low, high] that holds them all."""
    low, high = connection.execute(select(func.min(AuditEvent.id), func.max(AuditEvent.id))).one()
    return (low - 1, high) if low is not None else (0, 0)


def event_rows(
    connection: Connection,
    under: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    batch: int = 5_000,
) -> Iterator[list[dict[str, Any]]]:
    """Whole events of the chains of `under`, between `since` (included) and `until` (excluded), in
    (tenant, seq) order, as dicts of EVENT_COLUMNS with `at` an aware UTC datetime."""
    dialect = connection.dialect.name
    where, params = subtree(dialect, under)
    for bound, op in ((since, ">="), (until, "<")):
        if bound is not None:
            where += f" AND at {op} {mark(dialect)}"
            value = bound.astimezone(UTC).replace(tzinfo=None)
            params += (value.isoformat(sep=" ", timespec="microseconds") if dialect == "sqlite" else value,)
    cursor = _cursor(connection, "ssc_audit_export")
    try:
        cursor.execute(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM audit_event WHERE {where} ORDER BY tenant, seq", params
        )
        while rows := cursor.fetchmany(batch):
            yield [event_of(row) for row in rows]
    finally:
        cursor.close()


def events_through(
    connection: Connection, tenant: str, seq: int, batch: int = 5_000
) -> Iterator[list[dict[str, Any]]]:
    """The events of one chain up to event `seq` (included), in order, as `event_rows` gives them."""
    m = mark(connection.dialect.name)
    cursor = _cursor(connection, "ssc_audit_archive")
    try:
        cursor.execute(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM audit_event WHERE tenant = {m} AND seq <= {m} "
            "ORDER BY seq",
            (tenant, seq),
        )
        while rows := cursor.fetchmany(batch):
            yield [event_of(row) for row in rows]
    finally:
        cursor.close()


def content_of(connection: Connection, event_id: int) -> bytes | None:
    """The hashed content of one stored event, rebuilt in Python from its columns; None if it is gone."""
    return rebuilt_content(connection.connection.driver_connection, connection.dialect.name, event_id)
