"""Indexed point reads on the partner request path (the card lookup of every partner call).

On SQLite the read runs on a connection of the worker's own, right in the event loop: in WAL mode a
reader never waits for the writer, an indexed point read takes ~10 µs, and handing it to a thread
(aiosqlite) costs ~250 µs of hops and wake-ups — more than everything else the call does. On
PostgreSQL every read is a network round trip, so it stays asynchronous, on a pool of its own whose
connections are in autocommit: one round trip a read. (Through the app's engine a read was three:
BEGIN, the query, and the ROLLBACK that resets a connection returned to the pool.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql import Select

from app.store.driver_sql import DriverSQL

# A WAL reader only waits while another connection recovers the WAL after a crash: rare and short,
# and the wait blocks the worker's loop, so it is bounded tighter than a writer's.
READER_BUSY_TIMEOUT_MS = 2_000
# PostgreSQL: the reads' own connections, beside the app's pool (app.store.db). All kept open, none
# beyond: SQLAlchemy closes an overflow connection when it is given back to a full pool, so under
# steady load above the pool's size every read opened and closed one (a PostgreSQL backend started
# and ended per partner call: one worker at 64 concurrent calls answered 1,072 cardStatus/s, 1,997
# with the same 20 connections held open; BENCHMARKS.md). A read waits for a free connection instead.
READ_POOL_SIZE = 20
READ_POOL_OVERFLOW = 0


@dataclass(frozen=True)
class _Prepared:
    sql: DriverSQL
    # (column index, converter) for the columns whose stored form is not their Python value
    # (timestamps), converted the way SQLAlchemy would.
    convert: tuple[tuple[int, Callable[[Any], Any]], ...]

    @classmethod
    def of(cls, statement: Select, dialect: Dialect) -> _Prepared:
        convert = tuple(
            (i, processor)
            for i, column in enumerate(statement.selected_columns)
            if (processor := column.type.dialect_impl(dialect).result_processor(dialect, None)) is not None
        )
        return cls(DriverSQL.compile(statement, dialect), convert)

    def row(self, raw: tuple) -> tuple:
        if not self.convert:
            return raw
        values = list(raw)
        for i, processor in self.convert:
            values[i] = processor(values[i])
        return tuple(values)


class PointReader:
    """`await reader.all(statement, values)` → the rows as tuples, for small indexed reads only."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._prepared: dict[Select, _Prepared] = {}
        self._connection: sqlite3.Connection | None = None
        self._autocommit: AsyncEngine | None = (
            None
            if self._sqlite
            else create_async_engine(
                engine.url,
                isolation_level="AUTOCOMMIT",
                pool_size=READ_POOL_SIZE,
                max_overflow=READ_POOL_OVERFLOW,
            )
        )

    async def all(self, statement: Select, values: Mapping[str, Any]) -> Sequence[tuple]:
        prepared = self._prepared.get(statement)
        if prepared is None:
            prepared = self._prepared[statement] = _Prepared.of(statement, self.engine.dialect)
        if self._autocommit is not None:
            async with self._autocommit.connect() as connection:
                result = await connection.exec_driver_sql(prepared.sql.sql, prepared.sql.params(values))
                return [prepared.row(tuple(raw)) for raw in result.all()]
        cursor = self._sqlite_connection().execute(prepared.sql.sql, prepared.sql.params(values))
        return [prepared.row(raw) for raw in cursor.fetchall()]

    def _sqlite_connection(self) -> sqlite3.Connection:
        if self._connection is None:
            sync: Engine = self.engine.sync_engine
            # Outside any transaction (Python's sqlite3 opens one only for writes), so every read
            # sees the latest commit and no snapshot holds back WAL checkpoints.
            self._connection = sqlite3.connect(sync.url.database, isolation_level=None)
            self._connection.execute(f"PRAGMA busy_timeout={READER_BUSY_TIMEOUT_MS}")
            self._connection.execute("PRAGMA query_only=ON")
        return self._connection

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._autocommit is not None:
            await self._autocommit.dispose()
