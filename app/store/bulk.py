"""Bulk inserts that bypass the ORM, for rows prepared in other processes.

The ORM's bulk insert compiles and type-processes every value (about 65 µs a card row here); card
imports need a few µs. Rows travel as `PackedRows`, built by `pack_rows` from columns:

- the plain columns (str, int, None) in a small SQLite database, one table `stage`, serialized to
  bytes. A row's rowid is its record index, chosen by the caller, so any slice of a block can be
  written; `n` is its position among the packed rows;
- each bytes column as one joined value. sqlite3 binds bytes slowly (about 0.45 µs a value, through
  its adapter lookup), a joined value is bound once per statement and cut with substr(): at the
  row's `n` times the width when every value has the same length, else at a stored offset.

On SQLite a block is deserialized into a schema attached to the writing connection and copied with
one INSERT ... SELECT, so SQLite reads the values in C instead of Python binding a dozen parameters
per row, which is most of the cost of an executemany. PostgreSQL gets the unpacked rows through
COPY, and finds the keys it already holds by a join with the batch's keys as arrays. Values shared
by every row (timestamps, defaults) are given once per statement, converted the way their column
types store them, so rows written here read back like ORM-written ones.

This module imports no SQLAlchemy at run time: worker processes that only pack rows start fast.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

STAGE_TABLE = "stage"
# The schema a block is deserialized into on the writing connection.
STAGE_SCHEMA = "bulk_stage"


@dataclass(frozen=True)
class JoinedBlob:
    """One column of a block as a single value: bytes values joined, and `width` when they all have
    that length (else each row stores `<column>_at` and `<column>_len`, -1 for None). `text`: the
    values were ASCII strings of one length, joined and encoded."""

    column: str
    data: bytes
    width: int | None
    text: bool = False


@dataclass(frozen=True)
class PackedRows:
    image: bytes
    plain: tuple[str, ...]
    blobs: tuple[JoinedBlob, ...]


def _one_width_ascii(column: str, data: Sequence) -> JoinedBlob | None:
    """A text column whose values are ASCII strings of one length, joined; else None."""
    try:
        widths = set(map(len, data))
        joined = "".join(data)
    except TypeError:  # None or numbers among the values
        return None
    if len(widths) != 1 or not joined.isascii():
        return None
    return JoinedBlob(column, joined.encode("ascii"), widths.pop(), text=True)


def pack_rows(
    rowids: Sequence[int], columns: Mapping[str, Sequence], blob_columns: Collection[str]
) -> PackedRows:
    """Pack the rows given column by column (each sequence as long as `rowids`); the columns named in
    `blob_columns` hold bytes or None, the others plain values. Text columns of one width travel
    joined too: a value bound per row costs more than cutting it out in SQL."""
    plain: list[str] = []
    stage_columns = ["n"]
    values: list[Sequence] = [range(len(rowids))]
    blobs = []
    for column, data in columns.items():
        if column not in blob_columns:
            text = _one_width_ascii(column, data)
            if text is not None:
                blobs.append(text)
            else:
                plain.append(column)
                stage_columns.append(column)
                values.append(data)
            continue
        widths = set(map(len, data)) if None not in data else set()
        if len(widths) == 1:
            blobs.append(JoinedBlob(column, b"".join(data), widths.pop()))
            continue
        lengths = [-1 if v is None else len(v) for v in data]
        starts = list(accumulate((max(n, 0) for n in lengths), initial=1))[:-1]
        blobs.append(JoinedBlob(column, b"".join(v for v in data if v is not None), None))
        stage_columns += [f"{column}_at", f"{column}_len"]
        values += [starts, lengths]
    db = sqlite3.connect(":memory:", isolation_level=None)
    try:
        db.execute(f"create table {STAGE_TABLE} ({', '.join(stage_columns)})")
        marks = ", ".join("?" * (len(stage_columns) + 1))
        db.execute("begin")
        db.executemany(
            f"insert into {STAGE_TABLE} (rowid, {', '.join(stage_columns)}) values ({marks})",
            zip(rowids, *values, strict=True),
        )
        db.execute("commit")
        return PackedRows(db.serialize(), tuple(plain), tuple(blobs))
    finally:
        db.close()


def _column_sql(packed: PackedRows, column: str) -> tuple[str, list[bytes]]:
    """SQL for one column of the stage table (alias s), and the joined value it binds, if any.

    A joined column is cut out of its value: at `n` times the width when the values all have that
    width, else at the row's stored offset and length (-1 meaning None)."""
    blob = next((b for b in packed.blobs if b.column == column), None)
    if blob is None:
        return f"s.{column}", []
    if blob.width is not None:
        expr = f"substr(?, s.n * {blob.width} + 1, {blob.width})"
    else:
        at, length = f"s.{column}_at", f"s.{column}_len"
        expr = f"case when {length} < 0 then null else substr(?, {at}, {length}) end"
    return (f"cast({expr} as text)" if blob.text else expr), [blob.data]


def _select_list(packed: PackedRows, columns: Sequence[str]) -> tuple[str, list[bytes]]:
    """SQL selecting `columns` from the stage table, and the values it binds, in order."""
    exprs, params = [], []
    for column in columns:
        expr, bound = _column_sql(packed, column)
        exprs.append(expr)
        params += bound
    return ", ".join(exprs), params


def unpack_rows(packed: PackedRows, columns: Sequence[str], rowids: range) -> list[tuple]:
    """The rows of `packed` whose rowid lies in `rowids`, in rowid order, values in `columns` order."""
    db = sqlite3.connect(":memory:")
    try:
        db.deserialize(packed.image)
        select, params = _select_list(packed, columns)
        sql = f"select {select} from {STAGE_TABLE} s where s.rowid >= ? and s.rowid < ? order by s.rowid"
        return db.execute(sql, (*params, rowids.start, rowids.stop)).fetchall()
    finally:
        db.close()


def _storage(value: object, dialect: str) -> object:
    if isinstance(value, datetime):
        naive = value.astimezone(UTC).replace(tzinfo=None)
        # SQLAlchemy's SQLite DATETIME text format (microseconds always present).
        return naive.strftime("%Y-%m-%d %H:%M:%S.%f") if dialect == "sqlite" else naive
    return value


class PackedInserter:
    """Writes slices of packed blocks into `table` on one connection, inside its current transaction,
    and finds the staged rows whose keys the table already holds.

    `constants` are given to every row; columns nobody gives get the table's Python-side scalar
    defaults (status "normal", version 1, ...), which are not in the DDL. On SQLite the connection
    comes from `staging_connection()`.
    """

    def __init__(
        self,
        connection: AsyncConnection,
        table: Table,
        columns: Sequence[str],
        constants: Mapping[str, object] | None = None,
    ) -> None:
        self._connection = connection
        self._table = table.name
        # PostgreSQL binds a batch's keys as one typed array per column (`existing`).
        self._array_types = {c.name: c.type.compile(connection.dialect) for c in table.columns}
        self._columns = list(columns)
        self._dialect = connection.dialect.name
        shared = dict(constants or {})
        for column in table.columns:
            default = column.default
            given = column.name in columns or column.name in shared
            if not given and default is not None and default.is_scalar:
                shared[column.name] = default.arg
        self._shared = list(shared)
        self._fixed = tuple(_storage(v, self._dialect) for v in shared.values())
        self._loaded: PackedRows | None = None
        # PostgreSQL: segments unpacked by `existing`, kept for their `insert` (an inserter serves
        # one batch of an import).
        self._unpacked: dict[tuple[int, range], list[tuple]] = {}

    def _rows(self, packed: PackedRows, rowids: range) -> list[tuple]:
        """The rows of `rowids` as tuples in `columns` order, unpacked once per segment."""
        key = (id(packed), rowids)
        if key not in self._unpacked:
            self._unpacked[key] = unpack_rows(packed, self._columns, rowids)
        return self._unpacked[key]

    async def insert(self, packed: PackedRows, rowids: range) -> None:
        if not rowids:
            return
        targets = ", ".join([*self._columns, *self._shared])
        if self._dialect != "sqlite":
            await self._copy(targets, self._rows(packed, rowids))
            return
        await self._load(packed)
        select, params = _select_list(packed, self._columns)
        sql = (
            f'insert into "{self._table}" ({targets}) select {select}{", ?" * len(self._shared)}'
            f" from {STAGE_SCHEMA}.{STAGE_TABLE} s where s.rowid >= ? and s.rowid < ?"
        )
        await self._connection.exec_driver_sql(sql, (*params, *self._fixed, rowids.start, rowids.stop))

    async def _copy(self, targets: str, rows: list[tuple]) -> None:
        """PostgreSQL's COPY on the connection's own transaction: several times an executemany's rate."""
        raw = await self._connection.get_raw_connection()
        cursor = raw.driver_connection.cursor()  # the psycopg.AsyncConnection's
        async with cursor.copy(f'copy "{self._table}" ({targets}) from stdin') as copy:
            for row in rows:
                await copy.write_row((*row, *self._fixed))

    async def existing(self, packed: PackedRows, rowids: range, key: Sequence[str]) -> list[int]:
        """The rowids (within `rowids`) of staged rows whose `key` — columns that together are a
        unique key of the table — the table already holds, in order."""
        if not rowids:
            return []
        if self._dialect == "sqlite":
            # One join on the table's unique index, in C, instead of thousands of bound keys.
            await self._load(packed)
            matches, params = [], []
            for column in key:
                expr, bound = _column_sql(packed, column)
                matches.append(f"t.{column} = {expr}")
                params += bound
            found = f'exists (select 1 from "{self._table}" t where {" and ".join(matches)})'
            sql = (
                f"select s.rowid from {STAGE_SCHEMA}.{STAGE_TABLE} s where s.rowid >= ? and s.rowid < ?"
                f" and {found} order by s.rowid"
            )
            result = await self._connection.exec_driver_sql(sql, (rowids.start, rowids.stop, *params))
            return [rowid for (rowid,) in result.all()]
        at = [self._columns.index(column) for column in key]
        keys = [tuple(row[i] for i in at) for row in self._rows(packed, rowids)]
        found = await self._existing_keys(key, keys)
        return [rowid for rowid, k in zip(rowids, keys, strict=True) if k in found]

    async def _existing_keys(self, key: Sequence[str], keys: list[tuple]) -> set[tuple]:
        """PostgreSQL: the keys the table holds, found by joining it with the keys unnested from one
        array per column. (A row-value IN list of thousands of keys is planned as as many OR
        branches: seconds a batch.)"""
        names = [f"k{n}" for n in range(len(key))]
        arrays = ", ".join(f"%s::{self._array_types[column]}[]" for column in key)
        matches = " and ".join(f"t.{column} = k.{name}" for column, name in zip(key, names, strict=True))
        selected = ", ".join(f"k.{name}" for name in names)
        sql = (
            f"select {selected} from unnest({arrays}) as k({', '.join(names)})"
            f' join "{self._table}" t on {matches}'
        )
        columns = tuple(zip(*keys, strict=True)) if keys else tuple(() for _ in key)
        result = await self._connection.exec_driver_sql(sql, tuple(_array_literal(c) for c in columns))
        return {tuple(row) for row in result.all()}

    async def _load(self, packed: PackedRows) -> None:
        if packed is not self._loaded:
            await _deserialize(self._connection, packed.image)
            self._loaded = packed


@asynccontextmanager
async def staging_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection of its own for `PackedInserter`, with the stage schema attached on SQLite
    (SQLite cannot attach inside a transaction, so this happens before any). Afterwards it is closed
    rather than returned to the pool with a schema attached and settings changed."""
    async with engine.connect() as connection:
        if connection.dialect.name != "sqlite":
            yield connection
            return
        await connection.exec_driver_sql(f"attach database ':memory:' as {STAGE_SCHEMA}")
        await connection.commit()
        try:
            yield connection
        finally:
            await connection.invalidate()


def _array_literal(values: Sequence[str | int]) -> str:
    """A PostgreSQL array literal of the values (text or integers): built with one join, where the
    driver adapts a list value by value (a fifth of an import's time)."""
    if all(isinstance(v, int) for v in values):
        return "{" + ",".join(map(str, values)) + "}"
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


async def _deserialize(connection: AsyncConnection, image: bytes) -> None:
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection  # the aiosqlite.Connection
    # aiosqlite exposes no deserialize(): run sqlite3's on aiosqlite's connection thread, the way its
    # own methods run (aiosqlite is pinned; tests/ops exercise this path on every run).
    await driver._execute(driver._conn.deserialize, image, name=STAGE_SCHEMA)
