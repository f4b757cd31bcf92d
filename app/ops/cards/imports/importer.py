"""`ssc cards import`: load a card file into the database in validated, all-or-nothing batches.

Every record is checked (ID check character, Luhn, known issuing tenant, formats, no duplicate
card number within a tenant or card serial, in the file or in the database). A batch of
`batch_size` records with any problem writes nothing and its problems are reported with their
line numbers; the other batches go in. Records are prepared (parsed, checked, encrypted, hashed,
masked) in worker processes while this process writes (`card_import_pool`, `card_rows`).

Two ways to write, chosen when the import starts (`ImportSummary.mode`):

- initial load — SQLite and an empty card table: one transaction for the whole file. It takes the
  write lock first and checks the table is empty inside it, drops the card table's secondary
  indexes, inserts every batch that passes, builds the indexes again from the table definition,
  appends the audit events and commits. Appending to a table without indexes and sorting each index
  once is several times faster than keeping three indexes up to date row by row. Readers (WAL)
  see the empty table with its indexes until the commit, and a crash leaves the database as it was.
  The table being empty, duplicates can only come from the file, and the file's own check finds
  them all; the unique indexes built at the end would refuse the commit otherwise. The write lock
  is held for the whole import (other writers wait, up to SQLite's busy timeout).
- batches — a card table with rows, or PostgreSQL: one transaction per batch with the indexes
  live, each batch also checked against the cards already stored. On PostgreSQL `PG_WRITERS`
  batches are written at once, each on a connection of its own: one backend inserting into the card
  table and its indexes was the import's bottleneck (0.6 of a core, the importing process waiting for
  it). Their summaries are counted in file order whatever order they commit in.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.schema import CreateIndex, DropIndex
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.ops.cards.imports.batches import Batch, Batcher
from app.ops.cards.imports.pool import BLOCK_BYTES, CardFile, PreparedBlocks, worker_count
from app.ops.cards.imports.rows import CARD_COLUMNS, CardFileError, Problem
from app.store.audit import append_event, append_events
from app.store.bulk import PackedInserter, staging_connection
from app.store.crypto import FieldCipher
from app.store.db import take_write_lock
from app.store.tables import Card, Tenant
from app.store.tables.common import utcnow

__all__ = ["CardFileError", "ImportSummary", "Problem", "import_cards"]

ACTOR = "cli:cards-import"
LIVE_CACHE_KIB = 256 * 1024
# PostgreSQL: batches written at once (module docstring).
PG_WRITERS = 2
INITIAL_LOAD = "initial load"
BATCHES = "batches"
MODES = {
    INITIAL_LOAD: "empty card table: one transaction, indexes built once at the end",
    BATCHES: "one transaction per batch, indexes kept up to date",
}


@dataclass
class ImportSummary:
    rows: int = 0
    imported: int = 0
    batches_written: int = 0
    batches_refused: int = 0
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    mode: str = BATCHES

    def add(self, batch: Batch, problems: list[Problem], keep_problems: int) -> None:
        """Count a batch: written when it has no problems, else refused with them."""
        self.rows += batch.records
        if problems:
            self.batches_refused += 1
            self.problem_count += len(problems)
            self.problems += problems[: max(0, keep_problems - len(self.problems))]
        else:
            self.imported += batch.records
            self.batches_written += 1


class _Writer:
    """Writes the batches of one import through sessions bound to staging connections.

    `begin`, `write` each batch without problems (returning the problems found in the database),
    `commit`. Up to `concurrency` writes may run at once (one per session).

    The session begins each transaction (`session.connection()`) before the inserter uses that
    connection directly, so that the session's commit commits the inserted rows too.
    """

    mode: str

    def __init__(self, sessions: list[AsyncSession], path: Path) -> None:
        self.session = sessions[0]
        self.target = path.name[:96]
        self.concurrency = len(sessions)

    def event(self, batch: Batch) -> dict:
        return {
            "actor": ACTOR,
            "action": "cards.import",
            "target_type": "card_file",
            "target_id": self.target,
            "detail": {"lines": [batch.first_line, batch.last_line], "cards": batch.records},
        }

    async def inserter(self, session: AsyncSession) -> PackedInserter:
        now = utcnow()
        constants = {"created_at": now, "updated_at": now}
        return PackedInserter(await session.connection(), Card.__table__, CARD_COLUMNS, constants)


class _InitialLoad(_Writer):
    mode = INITIAL_LOAD

    async def begin(self) -> None:
        connection = await self.session.connection()
        for index in Card.__table__.indexes:
            await connection.execute(DropIndex(index))
        self.rows = await self.inserter(self.session)
        self.events: list[tuple[str, dict]] = []

    async def write(self, batch: Batch) -> list[Problem]:
        for block, rows in batch.segments:
            await self.rows.insert(block.packed, rows)
        self.events.append(("cn", self.event(batch)))
        return []

    async def commit(self) -> None:
        connection = await self.session.connection()
        # The workers are done: let SQLite's sorter use the other CPUs for the index builds (this
        # staging connection is closed after the import).
        await connection.exec_driver_sql(f"pragma threads = {os.cpu_count() or 1}")
        for index in Card.__table__.indexes:
            await connection.execute(CreateIndex(index))
        await append_events(self.session, self.events)
        await self.session.commit()


class _Batches(_Writer):
    mode = BATCHES

    def __init__(self, sessions: list[AsyncSession], path: Path) -> None:
        super().__init__(sessions, path)
        self.idle: asyncio.Queue[AsyncSession] = asyncio.Queue()
        for session in sessions:
            self.idle.put_nowait(session)

    async def begin(self) -> None:
        if self.session.bind.dialect.name == "sqlite":
            # Live index inserts land all over three B-trees; a page cache that holds them spares a
            # read per index and row. The staging connection is closed after the import.
            connection = await self.session.connection()
            await connection.exec_driver_sql(f"pragma cache_size = -{LIVE_CACHE_KIB}")
            await self.session.commit()

    async def write(self, batch: Batch) -> list[Problem]:
        session = await self.idle.get()
        try:
            async with session.begin():
                await take_write_lock(session)
                rows = await self.inserter(session)
                problems = await _already_stored(rows, batch)
                if not problems:
                    for block, segment in batch.segments:
                        await rows.insert(block.packed, segment)
                    await append_event(session, tenant="cn", **self.event(batch))
            return problems
        finally:
            self.idle.put_nowait(session)

    async def commit(self) -> None:
        pass


async def _already_stored(inserter: PackedInserter, batch: Batch) -> list[Problem]:
    problems = []
    for block, rows in batch.segments:
        for rowid in await inserter.existing(block.packed, rows, ["card_serial"]):
            problems.append(Problem(block.lines[rowid], "card_serial", "already in the database"))
        for rowid in await inserter.existing(block.packed, rows, ["issuing_tenant_id", "card_number"]):
            message = "already in the database for this tenant"
            problems.append(Problem(block.lines[rowid], "card_number", message))
    return sorted(problems, key=lambda p: p.line)  # stable: a line's serial before its number


@asynccontextmanager
async def _opened_writer(
    sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine, path: Path
) -> AsyncIterator[_Writer]:
    """The initial load when the card table is empty on SQLite (checked under the write lock), else
    batches: on PostgreSQL through `PG_WRITERS` sessions, each on a staging connection of its own."""
    async with AsyncExitStack() as stack:
        on_sqlite = engine.dialect.name == "sqlite"
        bound = []
        for _ in range(1 if on_sqlite else PG_WRITERS):
            connection = await stack.enter_async_context(staging_connection(engine))
            bound.append(await stack.enter_async_context(sessions(bind=connection)))
        session = bound[0]
        if on_sqlite:
            await take_write_lock(session)
            if (await session.exec(select(Card.id).limit(1))).first() is None:
                yield _InitialLoad(bound, path)
                return
            await session.rollback()
        yield _Batches(bound, path)


@contextmanager
def _without_cyclic_gc() -> Iterator[None]:
    """The duplicate check keeps two keys per record, millions of small acyclic objects; the cyclic
    collector would rescan them at every generation-2 pass (seconds over a million cards)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def import_cards(
    sessions: async_sessionmaker[AsyncSession],
    cipher: FieldCipher,
    path: Path,
    *,
    batch_size: int = 20_000,
    keep_problems: int = 200,
    progress: Callable[[int], None] = lambda n: None,
    workers: int | None = None,
    block_bytes: int = BLOCK_BYTES,
) -> ImportSummary:
    """Import the card file at `path`. `workers`: processes preparing records (0: this process;
    default: none for small files, else one per CPU); `block_bytes`: the size of their blocks."""
    card_file = CardFile.open(path)
    async with sessions() as session:
        tenants = {p: i for i, p in (await session.exec(select(Tenant.id, Tenant.path))).all()}
        engine = session.bind
    prepared = PreparedBlocks(
        card_file, tenants, cipher, workers=worker_count(card_file, workers), block_bytes=block_bytes
    )
    summary = ImportSummary()
    with _without_cyclic_gc():
        async with prepared as blocks, _opened_writer(sessions, engine, path) as writer:
            summary.mode = writer.mode
            await writer.begin()
            batcher = Batcher(batch_size, card_file.first_line)
            # Batches being written, oldest first; each is counted once written, in file order.
            in_flight: deque[tuple[Batch, asyncio.Future[list[Problem]]]] = deque()

            async def settle(keep: int) -> None:
                while len(in_flight) > keep:
                    batch, written = in_flight.popleft()
                    summary.add(batch, await written, keep_problems)
                    progress(batch.last_line - batch.first_line + 1)

            async def write(batch: Batch) -> None:
                if batch.problems:  # refused without the database
                    written = asyncio.get_running_loop().create_future()
                    written.set_result(batch.problems)
                else:
                    written = asyncio.ensure_future(writer.write(batch))
                in_flight.append((batch, written))
                await settle(writer.concurrency - 1)

            try:
                async for block in blocks:
                    for batch in batcher.add(block):
                        await write(batch)
                last = batcher.finish()
                if last is not None:
                    await write(last)
                await settle(0)
            except BaseException:
                # A failure (a batch, the file, Ctrl-C): the batches being written finish first, each
                # whole or not at all as always, as they would have one at a time; then the error.
                await asyncio.gather(*(written for _, written in in_flight), return_exceptions=True)
                raise
            await writer.commit()
    return summary
