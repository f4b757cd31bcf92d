"""Column types and helpers shared by the tables."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Integer
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

# Deterministic constraint names, so migrations can name what they alter on both databases.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timestamps are UTC everywhere; SQLite drops the zone, so store naive UTC and re-attach it."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect):
        return None if value is None else value.replace(tzinfo=UTC)


def version_column() -> Column:
    """The `version` of a row that callers change by `expectedVersion` (see `compare_and_set`)."""
    return Column("version", Integer, nullable=False, default=1)


def compare_and_set(version: Column) -> dict:
    """Mapper arguments that make every ORM update of the row a compare-and-set on `version`.

    Each UPDATE carries `WHERE id = … AND version = v`, where v is the version this transaction
    read (or last wrote) for the row; a change that a concurrent request committed first leaves no
    row to match, and the flush raises StaleDataError (answered CONFLICT by app/ops/refusals.py)
    instead of overwriting it. The use case sets the new version itself (`row.version += 1`, once per
    change however often the row is flushed: `version_id_generator=False`). Core `update()`
    statements bypass this and put the version or state in their own WHERE and check the row count.
    """
    return {"version_id_col": version, "version_id_generator": False}
