"""Bulk inserts straight through the driver's executemany.

The ORM's bulk insert compiles and type-processes every value (about 65 µs a card row here); card
imports need a few µs. Row values are passed to the driver as they are, so they must be plain
(str, bytes, int, bool, None); values shared by every row (timestamps, defaults) are converted once,
the way their column types store them, so rows written here read back like ORM-written ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy import Table
from sqlmodel.ext.asyncio.session import AsyncSession


def _storage(value: object, dialect: str) -> object:
    if isinstance(value, datetime):
        naive = value.astimezone(UTC).replace(tzinfo=None)
        # SQLAlchemy's SQLite DATETIME text format (microseconds always present).
        return naive.strftime("%Y-%m-%d %H:%M:%S.%f") if dialect == "sqlite" else naive
    return value


async def insert_rows(
    session: AsyncSession, table: Table, rows: Sequence[dict], constants: Mapping[str, object] | None = None
) -> None:
    """Insert `rows` (dicts with the same keys) plus `constants` in one executemany, in the session's
    transaction. Python-side scalar defaults of the table (status "normal", version 1, ...) are not
    in the DDL, so they are applied here for the columns nobody gave."""
    if not rows:
        return
    connection = await session.connection()
    dialect = connection.dialect.name
    shared = dict(constants or {})
    for column in table.columns:
        default = column.default
        if (
            column.name not in rows[0]
            and column.name not in shared
            and default is not None
            and default.is_scalar
        ):
            shared[column.name] = default.arg
    given = list(rows[0])
    fixed = tuple(_storage(v, dialect) for v in shared.values())
    marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    columns = [*given, *shared]
    sql = f'insert into "{table.name}" ({", ".join(columns)}) values ({", ".join([marker] * len(columns))})'
    await connection.exec_driver_sql(sql, [(*(row[c] for c in given), *fixed) for row in rows])
