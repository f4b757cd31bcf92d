"""Reading the audit chains in order, for verification and export, a batch at a time.

A million events must verify in a few seconds with flat memory, and SQLAlchemy's row machinery costs
more than the check itself, so the chains are read through the raw DB-API connection: a server-side
cursor on PostgreSQL, `fetchmany` on SQLite (whose cursor steps through the index as it goes).

For verification the database also writes each event's hashed content (the canonical JSON of
app/domain/audit_chain.py) in SQL, which reads several times faster than the columns it is made of.
That text is only a fast path: where its hash does not match, `content_of` rebuilds the content in
Python from the stored columns, and only that decides. (The two agree on everything the platform
writes; they may differ on hand-made rows, e.g. text with control characters.)
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from app.domain.audit_chain import HASHED_FIELDS, Row, event_time_text, hashed_content
from app.store.queries import subtree_bounds

# Columns in the order of app/store/tables/audit.AuditEvent, for exports and for `content_of`.
EVENT_COLUMNS = (
    "id",
    "tenant",
    "seq",
    "prev_hash",
    "hash",
    "at",
    "actor",
    "credential",
    "action",
    "target_type",
    "target_id",
    "decision",
    "reason",
    "detail",
    "request_id",
)


def _sqlite_object(with_credential: bool) -> str:
    pairs = [
        "'action', action",
        "'actor', actor",
        "'at', substr(at, 1, 10) || 'T' || substr(at, 12) || 'Z'",
        *(["'credential', credential"] if with_credential else []),
        "'decision', decision",
        # json() of text that is not JSON would stop the whole walk; "" makes it a mismatch instead.
        "'detail', json(CASE WHEN json_valid(detail) THEN detail ELSE '\"\"' END)",
        "'reason', reason",
        "'request_id', request_id",
        "'seq', seq",
        "'target_id', target_id",
        "'target_type', target_type",
        "'tenant', tenant",
    ]
    return "json_object(" + ", ".join(pairs) + ")"


_SQLITE_CONTENT = (
    f"CAST(CASE WHEN credential IS NULL THEN {_sqlite_object(False)} ELSE {_sqlite_object(True)} END AS BLOB)"
)


def _pg_text(column: str) -> str:
    return f"coalesce(to_json({column})::text, 'null')"


_PG_CONTENT = (
    "convert_to('{\"action\":' || "
    + " || ".join(
        [
            _pg_text("action"),
            "',\"actor\":'",
            _pg_text("actor"),
            '\',"at":"\'',
            "to_char(at, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')",
            "'Z\"'",
            "CASE WHEN credential IS NULL THEN '' ELSE ',\"credential\":' || to_json(credential)::text END",
            "',\"decision\":'",
            _pg_text("decision"),
            "',\"detail\":'",
            "detail",
            "',\"reason\":'",
            _pg_text("reason"),
            "',\"request_id\":'",
            _pg_text("request_id"),
            "',\"seq\":'",
            "seq::text",
            "',\"target_id\":'",
            _pg_text("target_id"),
            "',\"target_type\":'",
            _pg_text("target_type"),
            "',\"tenant\":'",
            _pg_text("tenant"),
            "'}'",
        ]
    )
    + ", 'UTF8')"
)


def _subtree(dialect: str, under: str | None) -> tuple[str, tuple[Any, ...]]:
    """SQL condition and parameters for the chains of `under` and the tenants below it (all: None)."""
    if under is None:
        return "1 = 1", ()
    mark = "?" if dialect == "sqlite" else "%s"
    return f"tenant >= {mark} AND tenant < {mark}", subtree_bounds(under)


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
    written_order: bool = False,
    tenants: Collection[str] | None = None,
) -> Iterator[list[Row]]:
    """The events of the chains of `under` (all: None), or of `tenants`, in batches of rows
    (tenant, seq, prev_hash, hash, content, row id): in (tenant, seq) order for `ChainWalk.feed`, or
    with `written_order` in the order the table holds them, for `WrittenOrderPass.feed` (a scan of
    the table instead of a walk of its index, each row a jump elsewhere in the file)."""
    dialect = connection.dialect.name
    where, params = _subtree(dialect, under)
    if tenants is not None:
        mark = "?" if dialect == "sqlite" else "%s"
        where += f" AND tenant IN ({', '.join([mark] * len(tenants))})" if tenants else " AND 1 = 0"
        params += tuple(sorted(tenants))
    content = _PG_CONTENT if dialect == "postgresql" else _SQLITE_CONTENT
    order = "id" if written_order else "tenant, seq"
    cursor = _cursor(connection, "ssc_audit_walk")
    try:
        cursor.execute(
            f"SELECT tenant, seq, prev_hash, hash, {content}, id FROM audit_event "
            f"WHERE {where} ORDER BY {order}",
            params,
        )
        while rows := cursor.fetchmany(batch):
            yield rows
            del rows  # one batch in memory at a time (the caller drops its own reference too)
    finally:
        cursor.close()


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
    where, params = _subtree(dialect, under)
    mark = "?" if dialect == "sqlite" else "%s"
    for bound, op in ((since, ">="), (until, "<")):
        if bound is not None:
            where += f" AND at {op} {mark}"
            value = bound.astimezone(UTC).replace(tzinfo=None)
            params += (value.isoformat(sep=" ", timespec="microseconds") if dialect == "sqlite" else value,)
    cursor = _cursor(connection, "ssc_audit_export")
    try:
        cursor.execute(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM audit_event WHERE {where} ORDER BY tenant, seq", params
        )
        while rows := cursor.fetchmany(batch):
            yield [_event(row) for row in rows]
    finally:
        cursor.close()


def events_through(
    connection: Connection, tenant: str, seq: int, batch: int = 5_000
) -> Iterator[list[dict[str, Any]]]:
    """The events of one chain up to event `seq` (included), in order, as `event_rows` gives them."""
    mark = "?" if connection.dialect.name == "sqlite" else "%s"
    cursor = _cursor(connection, "ssc_audit_archive")
    try:
        cursor.execute(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM audit_event WHERE tenant = {mark} AND seq <= {mark} "
            "ORDER BY seq",
            (tenant, seq),
        )
        while rows := cursor.fetchmany(batch):
            yield [_event(row) for row in rows]
    finally:
        cursor.close()


def stored_time(value: datetime | str) -> datetime:
    """A stored `at` as an aware UTC datetime (SQLite's driver gives text, psycopg a naive datetime)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _event(row: tuple) -> dict[str, Any]:
    event = dict(zip(EVENT_COLUMNS, row, strict=True))
    event["at"] = stored_time(event["at"])
    return event


def content_of(connection: Connection, event_id: int) -> bytes | None:
    """The hashed content of one stored event, rebuilt in Python from its columns; None if it is gone."""
    mark = "?" if connection.dialect.name == "sqlite" else "%s"
    cursor = connection.connection.driver_connection.cursor()
    try:
        cursor.execute(f"SELECT {', '.join(EVENT_COLUMNS)} FROM audit_event WHERE id = {mark}", (event_id,))
        row = cursor.fetchone()
    finally:
        cursor.close()
    if row is None:
        return None
    event = _event(row)
    fields = {name: event[name] for name in HASHED_FIELDS} | {"credential": event["credential"]}
    fields["at"] = event_time_text(event["at"])
    return hashed_content(fields, event["detail"].encode())
