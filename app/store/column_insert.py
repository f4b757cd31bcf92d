"""Inserting many rows given column by column, through the driver, in one statement on PostgreSQL.

Policy lines and their log entries are written this way (a bulk grant writes 200,000 rows). On
SQLite an executemany, fed from the columns; on PostgreSQL one `INSERT ... SELECT FROM unnest(...)`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from functools import lru_cache
from itertools import repeat
from typing import Any

from sqlalchemy import Dialect, Table, bindparam, insert
from sqlmodel.ext.asyncio.session import AsyncSession

from app.store.driver_sql import DriverSQL
from app.store.slices import in_slices


def _inserted(table: Table) -> list:
    return [c for c in table.columns if not c.primary_key]


@lru_cache(maxsize=16)
def _converters(table: Table, dialect: Dialect) -> dict[str, Callable]:
    """The bind converters of the columns that have one (e.g. a datetime's on SQLite)."""
    converters = {c.name: c.type.dialect_impl(dialect).bind_processor(dialect) for c in _inserted(table)}
    return {name: convert for name, convert in converters.items() if convert is not None}


@lru_cache(maxsize=16)
def _values_insert(table: Table, dialect: Dialect) -> DriverSQL:
    """`INSERT INTO table (...) VALUES (...)` in the driver's SQL."""
    statement = insert(table).values({c.name: bindparam(c.name) for c in _inserted(table)})
    return DriverSQL.compile(statement, dialect)


async def insert_columns(
    session: AsyncSession, table: Table, columns: dict[str, Sequence], shared: dict[str, Any]
) -> None:
    """Insert rows given column by column (`columns`, lists of one length) with the values every
    row shares (`shared`). Bulk grants write 200,000 rows (their lines and log entries), so this
    goes through the driver: SQLAlchemy's per-row parameter processing costs ~10 µs a row."""
    dialect = session.bind.dialect
    converters = _converters(table, dialect)
    columns = {n: [converters[n](v) for v in vs] if n in converters else vs for n, vs in columns.items()}
    shared = {n: converters[n](v) if n in converters else v for n, v in shared.items()}
    connection = await session.connection()
    if dialect.name == "postgresql":
        await connection.exec_driver_sql(*await _unnested_insert(table, dialect, columns, shared))
        return
    rows = len(next(iter(columns.values())))
    statement = _values_insert(table, dialect)
    given = [columns[n] if n in columns else repeat(shared[n], rows) for n in statement.positions]
    await connection.exec_driver_sql(statement.sql, list(zip(*given, strict=True)))


# Separators of a joined text column: control characters that policy values never hold (they are
# checked: a column holding one goes as an array instead).
_UNIT, _NULL = "\x1f", "\x1e"


async def _joined(values: Sequence) -> str | None:
    """A column of texts (or None) as one text, split again by PostgreSQL's `string_to_array`: psycopg
    dumps a Python list element by element in Python (0.6 s of a bulk grant's columns), a text goes
    as it is. None when a value is not a text or holds a separator. Joined slice by slice."""
    parts = []
    async for part in in_slices(values):
        try:
            joined = _UNIT.join(_NULL if v is None else v for v in part)
        except TypeError:
            return None
        if joined.count(_UNIT) != len(part) - 1 or joined.count(_NULL) != sum(v is None for v in part):
            return None
        parts.append(joined)
    return _UNIT.join(parts)


async def _unnested_insert(
    table: Table, dialect: Dialect, columns: dict[str, Sequence], shared: dict[str, Any]
) -> tuple[str, dict]:
    """`INSERT ... SELECT FROM unnest(arrays)`: one statement with an array per column, for
    PostgreSQL. An executemany, even pipelined, binds and executes each row on its own (3 s of a
    bulk grant's 200,000 rows); arrays go over in one message. A column whose rows all hold one
    value (the ptype of a bulk grant's lines) is sent once, a column of texts as one text
    (`_joined`). The ids of the inserted rows follow the arrays' order (the log relies on it: it
    numbers a transaction's entries back from the last id)."""
    quote = dialect.identifier_preparer.quote
    varying, shared = {}, dict(shared)
    for name, values in columns.items():
        await asyncio.sleep(0)  # a column of 100,000 takes a few ms to look through (see app.store.slices)
        first = values[0]
        if all(v == first for v in values):
            shared[name] = first
        else:
            varying[name] = await _joined(values) or values  # one text when it can be

    def typed(name: str) -> str:
        return table.c[name].type.compile(dialect=dialect)

    params: dict[str, Any] = {"_unit": _UNIT, "_null": _NULL, **shared}
    arrays: list[str] = []
    for name, values in varying.items():
        params[name] = values
        if isinstance(values, str):
            arrays.append(f"string_to_array(%({name})s, %(_unit)s, %(_null)s)::{typed(name)}[]")
        else:
            arrays.append(f"%({name})b::{typed(name)}[]")
    selected = [f"u.{quote(n)}" for n in varying] + [f"%({n})s::{typed(n)}" for n in shared]
    if arrays:
        source = f"unnest({', '.join(arrays)}) AS u({', '.join(quote(n) for n in varying)})"
    else:
        source = "generate_series(1, %(_rows)s)"
        params["_rows"] = len(next(iter(columns.values())))
    into = ", ".join(quote(n) for n in [*varying, *shared])
    return f"INSERT INTO {quote(table.name)} ({into}) SELECT {', '.join(selected)} FROM {source}", params
