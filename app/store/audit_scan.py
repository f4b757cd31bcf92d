"""The audit trail read through the database driver alone, for verification's first pass: the events
in the order they were written, one part of the table at a time, with each event's hashed content.

`ssc audit verify` reads a large trail with several processes (app/ops/compliance/verify.py), and a
process that imports SQLAlchemy spends most of a second starting; these functions need only the
driver (sqlite3 or psycopg), so each starts in a few tens of milliseconds. The same SQL and the same
rebuild of an event's content serve app/store/audit_read.py, which reads through SQLAlchemy's
connection for everything else.

The database writes each event's hashed content (the canonical JSON of app/domain/audit_chain.py) in
SQL, which reads several times faster than the columns it is made of. That text is only a fast path:
where its hash does not match, `rebuilt_content` makes the content in Python from the stored
columns, and only that decides. (The two agree on everything the platform writes; they may differ on
hand-made rows, e.g. text with control characters.)
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from app.domain.audit_chain import (
    HASHED_FIELDS,
    Link,
    Row,
    Segment,
    Sighting,
    WrittenOrderPass,
    event_time_text,
    hashed_content,
)
from app.domain.regions import subtree_bounds


class Target(NamedTuple):
    """Where a driver connects: ("sqlite", file path) or ("postgresql", connection URL)."""

    dialect: str
    address: str


def connect(target: Target):
    """A DB-API connection of the driver, read-only in what it is used for."""
    if target.dialect == "sqlite":
        import sqlite3

        connection = sqlite3.connect(target.address)
        connection.execute("PRAGMA busy_timeout=5000")
        return connection
    import psycopg

    return psycopg.connect(target.address)


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


def mark(dialect: str) -> str:
    """The DB-API parameter mark of the driver (sqlite3: qmark, psycopg: format)."""
    return "?" if dialect == "sqlite" else "%s"


def subtree(dialect: str, under: str | None) -> tuple[str, tuple[Any, ...]]:
    """SQL condition and parameters for the chains of `under` and the tenants below it (all: None)."""
    if under is None:
        return "1 = 1", ()
    m = mark(dialect)
    return f"tenant >= {m} AND tenant < {m}", subtree_bounds(under)


def content_sql(dialect: str) -> str:
    """SQL for an event's hashed content, as bytes."""
    return _PG_CONTENT if dialect == "postgresql" else _SQLITE_CONTENT


def stored_time(value: datetime | str) -> datetime:
    """A stored `at` as an aware UTC datetime (SQLite's driver gives text, psycopg a naive datetime)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def event_of(row: tuple) -> dict[str, Any]:
    """A row of EVENT_COLUMNS as a dict, with `at` an aware UTC datetime."""
    event = dict(zip(EVENT_COLUMNS, row, strict=True))
    event["at"] = stored_time(event["at"])
    return event


def rebuilt_content(raw, dialect: str, event_id: int) -> bytes | None:
    """The hashed content of one stored event, rebuilt in Python from its columns (`raw`: a DB-API
    connection); None if it is gone."""
    cursor = raw.cursor()
    try:
        cursor.execute(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM audit_event WHERE id = {mark(dialect)}", (event_id,)
        )
        row = cursor.fetchone()
    finally:
        cursor.close()
    if row is None:
        return None
    event = event_of(row)
    fields = {name: event[name] for name in HASHED_FIELDS} | {"credential": event["credential"]}
    fields["at"] = event_time_text(event["at"])
    return hashed_content(fields, event["detail"].encode())


def written_rows(
    raw, dialect: str, under: str | None, ids: tuple[int, int], batch: int = 10_000
) -> Iterator[list[Row]]:
    """The events of the chains of `under` (all: None) with ids in (low, high], in the order the table
    holds them (a scan, not a walk of the (tenant, seq) index, each row a jump elsewhere in the
    file), in batches of rows (tenant, seq, prev_hash, hash, content, row id)."""
    where, params = subtree(dialect, under)
    m = mark(dialect)
    cursor = raw.cursor(name="ssc_audit_scan") if dialect == "postgresql" else raw.cursor()
    if dialect == "postgresql":
        cursor.itersize = batch  # server-side: the rows stay on the server until fetched
    try:
        cursor.execute(
            f"SELECT tenant, seq, prev_hash, hash, {content_sql(dialect)}, id FROM audit_event "
            f"WHERE {where} AND id > {m} AND id <= {m} ORDER BY id",
            (*params, *ids),
        )
        while rows := cursor.fetchmany(batch):
            yield rows
            del rows  # one batch in memory at a time (the caller drops its own reference too)
    finally:
        cursor.close()


def sight(
    target: Target, under: str | None, ids: tuple[int, int], anchors: Iterable[Link], progress=None
) -> Sighting:
    """`WrittenOrderPass` over the events with ids in (low, high], on a connection of its own: what
    each of verification's processes does."""
    raw = connect(target)
    try:
        first = WrittenOrderPass(
            anchors=anchors, recheck=lambda ref: rebuilt_content(raw, target.dialect, ref)
        )
        for batch in written_rows(raw, target.dialect, under, ids):
            first.feed(batch)
            if progress is not None:
                progress(len(batch))
            del batch
        return first.sighting()
    finally:
        raw.close()


def sighting_document(found: Sighting) -> bytes:
    """A sighting as JSON, to hand from a reading process to the one that stitches."""
    return orjson.dumps(
        {
            "segments": [
                [tenant, s.first.seq, s.first.hash, s.last.seq, s.last.hash, s.events]
                for tenant, s in found.segments.items()
            ],
            "doubtful": sorted(found.doubtful),
            "events": found.events,
        }
    )


def sighting_from(document: bytes) -> Sighting:
    data = orjson.loads(document)
    segments = {
        tenant: Segment(Link(tenant, first, first_hash), Link(tenant, last, last_hash), events)
        for tenant, first, first_hash, last, last_hash, events in data["segments"]
    }
    return Sighting(segments, set(data["doubtful"]), data["events"])


def sight_in_process(
    target: Target, under: str | None, ids: tuple[int, int], anchors: Iterable[Link]
) -> Sighting:
    """`sight` in a process of its own (`python -m app.store.audit_scan`), which starts in a few tens
    of milliseconds where a multiprocessing child would first import its parent's main module. The
    order goes on stdin, not the command line, where others could read a database password."""
    order = {
        "target": list(target),
        "under": under,
        "ids": list(ids),
        "anchors": [[a.tenant, a.seq, a.hash] for a in anchors],
    }
    done = subprocess.run(
        # -P: not the current directory first on the path, where another `app` could be found.
        [sys.executable, "-P", "-m", "app.store.audit_scan"],
        input=orjson.dumps(order),
        capture_output=True,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"reading audit events {ids[0] + 1}-{ids[1]} failed: {done.stderr.decode()[-2000:]}"
        )
    return sighting_from(done.stdout)


def _main() -> None:
    order = orjson.loads(sys.stdin.buffer.read())
    anchors = [Link(*a) for a in order["anchors"]]
    found = sight(Target(*order["target"]), order["under"], tuple(order["ids"]), anchors)
    sys.stdout.buffer.write(sighting_document(found))


if __name__ == "__main__":
    _main()
