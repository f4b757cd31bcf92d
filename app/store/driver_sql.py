"""SQLAlchemy statements compiled once into the driver's own SQL, for the few hot paths that run
through a raw DB-API connection.

On the partner request path SQLAlchemy's execution machinery costs far more than the query itself
(an indexed SQLite point read takes ~10 µs; the same read through an AsyncSession ~900 µs here).
Statements are still written with SQLAlchemy against the models, so names and types come from one
place; only their execution skips it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Dialect
from sqlalchemy.sql import ClauseElement


@dataclass(frozen=True)
class DriverSQL:
    """One statement in a dialect's paramstyle; `params` orders values the way the driver wants."""

    sql: str
    defaults: Mapping[str, Any]
    positions: tuple[str, ...] | None  # qmark/format dialects: the bound names in order

    @classmethod
    def compile(cls, statement: ClauseElement, dialect: Dialect) -> DriverSQL:
        compiled = statement.compile(dialect=dialect)
        positions = tuple(compiled.positiontup) if compiled.positional else None
        return cls(str(compiled), dict(compiled.params), positions)

    def params(self, values: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        merged = {**self.defaults, **values}
        if self.positions is None:
            return merged
        return tuple(merged[name] for name in self.positions)
