"""Group commit for standalone audit events: the events of many requests in one transaction.

A partner's card read, or a refused partner call, changes nothing but its audit event, and must not
be answered before that event is committed. One transaction per event would put every such request
through its own lock-read-insert-commit round, one at a time (SQLite has one writer), so each
worker runs one writer instead: requests queue their events and wait; the writer takes everything
queued, appends it to the chains in one transaction, commits, and only then lets the waiting
requests answer. While it commits, the next batch gathers. If the commit fails, every request of
the batch fails: nothing is answered unaudited.

Where the transaction runs (through the raw driver: SQLAlchemy's execution costs more than the
writes themselves):
- SQLite: right in the event loop when the write lock is free at once — appending to a local file
  costs less than handing the batch to a thread (measured: half the CPU per event). The loop never
  waits for the lock: when another writer holds it, the batch goes to the writer's thread, which
  waits there. That connection does not checkpoint the WAL on commit (a checkpoint syncs the
  database file, which would stall the loop); the thread checkpoints it between two batches, at
  most once a second.
- PostgreSQL: on an asynchronous connection of the writer's own, awaited in the event loop, which
  serves other requests during each round trip, in pipeline mode (`_InLoopPostgres`). In a thread,
  each round trip also had to win the GIL back from the busy loop thread, and every partner call
  waited for the batch: 290 cardStatus/s on one worker (`bench/load.py`), 660 in the loop with a
  statement at a time, 1,300 pipelined (with the card reads' own pool, app/store/point_reads.py).

Events that belong to a change do not come here: they are written in the change's own transaction
(`app.store.audit.append_event`), which takes the same chain locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Dialect, Engine, bindparam, insert
from sqlalchemy.pool import PoolProxiedConnection

from app import metrics
from app.domain.audit_chain import GENESIS_HASH
from app.store.audit import CHAIN_HEAD, chain_lock_key, event_row
from app.store.db import SQLITE_WAL_SIZE_LIMIT, driver_target, make_sync_engine
from app.store.driver_sql import DriverSQL
from app.store.tables import AuditEvent

log = logging.getLogger("ssc.audit")

# Bounds one transaction; under load a batch holds what arrived during the previous commit.
MAX_BATCH = 1_000
# How often the thread checkpoints the WAL that in-loop commits leave behind (SQLite itself would
# at every 1,000 pages, ~4 MB: about a second of partner reads at full load).
CHECKPOINT_INTERVAL_S = 1.0
_COLUMNS = [c for c in AuditEvent.__table__.columns if c.name != "id"]
Event = tuple[str, dict[str, Any]]
Pending = tuple[str, dict[str, Any], asyncio.Future]


@dataclass(frozen=True)
class _Statements:
    """The writer's SQL in one dialect, and the conversions the driver needs (timestamps)."""

    head: DriverSQL
    insert: DriverSQL
    convert: dict[str, Any]

    @classmethod
    def of(cls, dialect: Dialect) -> _Statements:
        processors = {c.name: c.type.dialect_impl(dialect).bind_processor(dialect) for c in _COLUMNS}
        return cls(
            head=DriverSQL.compile(CHAIN_HEAD, dialect),
            insert=DriverSQL.compile(
                insert(AuditEvent.__table__).values({c.name: bindparam(c.name) for c in _COLUMNS}),
                dialect,
            ),
            convert={name: p for name, p in processors.items() if p is not None},
        )

    def append(self, cursor, events: list[Event]) -> None:
        """Read the chains' heads and insert the events, in the transaction the caller commits (and
        whose write lock it holds: SQLite)."""
        heads = {}
        for tenant in sorted({tenant for tenant, _ in events}):
            cursor.execute(self.head.sql, self.head.params({"tenant": tenant}))
            heads[tenant] = _head(cursor.fetchone())
        cursor.executemany(self.insert.sql, self.rows(events, heads))

    def rows(self, events: list[Event], heads: dict[str, tuple[int, str]]) -> list:
        """The insert's parameters for `events`, chained from `heads` (each tenant's last seq and hash)."""
        rows = []
        for tenant, fields in events:
            row = event_row(tenant, heads[tenant], **fields)
            heads[tenant] = (row["seq"], row["hash"])
            for name, convert in self.convert.items():
                row[name] = convert(row[name])
            rows.append(self.insert.params(row))
        return rows


def _head(last) -> tuple[int, str]:
    return (last[0], last[1]) if last else (0, GENESIS_HASH)


class _InLoopSQLite:
    """The SQLite connection the event loop appends on, never waiting for the write lock."""

    def __init__(self, path: str, statements: _Statements) -> None:
        self.path = path
        self.statements = statements
        self._connection: sqlite3.Connection | None = None

    def try_write(self, events: list[Event]) -> bool:
        """Append and commit; False (nothing written) when another writer holds the lock."""
        connection = self._connection or self._open()
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            if err.sqlite_errorcode == sqlite3.SQLITE_BUSY:
                return False
            raise
        try:
            self.statements.append(connection.cursor(), events)
            connection.execute("COMMIT")
        except BaseException:
            # Roll back first: a close alone is deferred while a failed statement is still alive,
            # and would keep the write lock. The next batch starts on a fresh connection.
            with contextlib.suppress(sqlite3.Error):
                connection.rollback()
            self.close()
            raise
        return True

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None)
        connection.execute("PRAGMA busy_timeout=0")  # busy: hand the batch to the thread instead
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA wal_autocheckpoint=0")
        connection.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_SIZE_LIMIT}")
        self._connection = connection
        return connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


# The chains' advisory locks (those app.store.audit takes in a change's transaction), in the order
# given: sorted tenants, so that two writers never wait on each other in a circle.
_LOCK_CHAINS = (
    "select pg_advisory_xact_lock(hashtext(k)) from unnest(%s::text[]) with ordinality as t(k, n) order by n"
)
_CHAIN_HEADS = (
    "select t.tenant, h.seq, h.hash from unnest(%s::text[]) as t(tenant) left join lateral"
    " (select e.seq, e.hash from audit_event e where e.tenant = t.tenant order by e.seq desc limit 1) as h"
    " on true"
)


class _InLoopPostgres:
    """PostgreSQL: the writer's own asynchronous connection (psycopg's, without SQLAlchemy), in
    pipeline mode: a batch costs two round trips whatever its tenants (begin, lock the chains and read
    their heads; insert and commit). Each round trip waits for the event loop's turn, which under load
    is milliseconds: a statement at a time (lock, head, per tenant) made a batch take 15 ms."""

    def __init__(self, url: str, statements: _Statements) -> None:
        self.url = url  # a libpq URL
        self.statements = statements
        self._connection: psycopg.AsyncConnection | None = None

    async def write(self, events: list[Event]) -> None:
        connection = self._connection or await self._open()
        tenants = sorted({tenant for tenant, _ in events})
        try:
            async with connection.pipeline(), connection.transaction():
                await connection.execute(_LOCK_CHAINS, ([chain_lock_key(t) for t in tenants],))
                found = await (await connection.execute(_CHAIN_HEADS, (tenants,))).fetchall()
                heads = {
                    tenant: _head((seq, hash_) if seq is not None else None) for tenant, seq, hash_ in found
                }
                await connection.cursor().executemany(
                    self.statements.insert.sql, self.statements.rows(events, heads)
                )
        except BaseException:
            # After a failure the connection's state is unknown (broken, mid-transaction): the next
            # batch starts on a new one.
            await self.close()
            raise

    async def _open(self) -> psycopg.AsyncConnection:
        self._connection = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        return self._connection

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()


class _Threaded:
    """SQLite: the writer thread's connection, which waits for the write lock and checkpoints the WAL."""

    def __init__(self, engine: Engine, statements: _Statements) -> None:
        self.engine = engine
        self.statements = statements
        self._connection: PoolProxiedConnection | None = None

    def write(self, events: list[Event]) -> None:
        connection = self._connection or self._open()
        try:
            cursor = connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            self.statements.append(cursor, events)
            connection.commit()
            cursor.close()
        except BaseException:
            self._discard()
            raise

    def checkpoint(self) -> None:
        connection = self._connection or self._open()
        cursor = connection.cursor()
        cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()  # done with the statement
        cursor.close()

    def _open(self) -> PoolProxiedConnection:
        connection = self.engine.raw_connection()
        # Transactions are begun explicitly (BEGIN IMMEDIATE), not by the driver.
        connection.driver_connection.isolation_level = None
        self._connection = connection
        return connection

    def _discard(self) -> None:
        # After a failure the connection's state is unknown (mid-transaction, broken): drop it,
        # rolled back first so that no lock outlives it.
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.rollback()
            connection.invalidate()

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


class AuditWriter:
    """`await writer.append(tenant, actor=..., action=..., ...)` returns once the event is committed."""

    def __init__(self, database_url: str, *, checkpoint_interval: float = CHECKPOINT_INTERVAL_S) -> None:
        # SQLite: the writer thread's connections; PostgreSQL: only the dialect the SQL is compiled for.
        self._engine = make_sync_engine(database_url)
        self._checkpoint_interval = checkpoint_interval
        statements = _Statements.of(self._engine.dialect)
        self._postgres: _InLoopPostgres | None = None
        self._in_loop: _InLoopSQLite | None = None
        self._threaded: _Threaded | None = None
        self._thread: ThreadPoolExecutor | None = None
        if self._engine.dialect.name == "postgresql":
            self._postgres = _InLoopPostgres(driver_target(database_url)[1], statements)
        else:
            self._in_loop = _InLoopSQLite(self._engine.url.database, statements)
            self._threaded = _Threaded(self._engine, statements)
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ssc-audit")
        self._checkpointed_at = time.monotonic()
        self._unchecked_commits = False
        self._pending: list[Pending] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._closing = False

    async def append(self, tenant: str, **fields: Any) -> None:
        """Queue one event (the fields of `app.store.audit.event_row`) and wait for its commit."""
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="ssc-audit-writer")
        future = asyncio.get_running_loop().create_future()
        self._pending.append((tenant, fields, future))
        self._wake.set()
        await future

    async def close(self) -> None:
        """Write what is queued, then stop; the worker is shutting down."""
        if self._task is not None:
            self._closing = True
            self._wake.set()
            await self._task
        if self._postgres is not None:
            await self._postgres.close()
        else:
            self._in_loop.close()
            await asyncio.get_running_loop().run_in_executor(self._thread, self._threaded.close)
            self._thread.shutdown()
        self._engine.dispose()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(0)  # let the requests already running in this round join the batch
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                await self._write_batch(batch)
            if self._closing:
                return

    async def _write_batch(self, batch: list[Pending]) -> None:
        events = [(tenant, fields) for tenant, fields, _ in batch]
        metrics.AUDIT_BATCH.observe(len(batch))
        started = time.perf_counter()
        try:
            if self._postgres is not None:
                await self._postgres.write(events)
            elif self._in_loop.try_write(events):
                self._unchecked_commits = True
            else:
                await asyncio.get_running_loop().run_in_executor(self._thread, self._threaded.write, events)
        except Exception as err:  # every waiting request fails with the reason; none is answered
            log.error("audit batch of %d events failed: %s", len(batch), type(err).__name__)
            for *_, future in batch:
                if not future.done():
                    future.set_exception(err)
            return
        metrics.AUDIT_WRITE.observe(time.perf_counter() - started)
        for *_, future in batch:
            if not future.done():  # a request whose client went away was cancelled meanwhile
                future.set_result(None)
        await self._maybe_checkpoint()

    async def _maybe_checkpoint(self) -> None:
        """Checkpoint the WAL that in-loop commits left behind, between two batches.

        Between batches, not beside them: a checkpoint running while this writer keeps committing
        never catches up with the end of the WAL, so the WAL is never restarted and grows for as
        long as partners call (seen: 100 MB a minute). Events that arrive meanwhile wait for it.
        """
        now = time.monotonic()
        if not self._unchecked_commits or now - self._checkpointed_at < self._checkpoint_interval:
            return
        self._checkpointed_at, self._unchecked_commits = now, False
        try:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._threaded.checkpoint)
        except Exception as err:  # the next batch past the interval tries again
            log.warning("WAL checkpoint failed: %s", type(err).__name__)
