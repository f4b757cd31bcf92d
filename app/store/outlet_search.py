"""Finding outlets by a piece of their code or name without reading every outlet of a province.

Migration 0011 keeps a trigram index of outlet codes and names: on SQLite the FTS5 table
`outlet_search` (tokenizer trigram, over the outlet table's rows, kept by triggers), on PostgreSQL
pg_trgm GIN indexes that serve ILIKE. A trigram index finds pieces of three characters or more; a
shorter piece (两个汉字 is common) is matched by reading the rows. Matching is always re-checked on
the outlet row itself, so an index that lags (an SQLite VACUUM renumbers the rows it points at; see
docs/operations.md) can leave an outlet out of a search, never put a wrong one in.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, literal_column, or_, select, table, text

from app.store.tables import Outlet

# What the migration creates beyond the declared tables (the migration test leaves them aside).
FTS_TABLE = "outlet_search"
TRIGRAM_INDEXES = ("ix_outlet_id_trgm", "ix_outlet_name_trgm")
TRIGRAM = 3


def escaped_like(piece: str) -> str:
    """`%piece%` with LIKE's wildcards and its escape character taken literally (escape: backslash)."""
    return "%" + piece.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def contains(dialect: str, piece: str) -> ColumnElement[bool]:
    """Outlets whose code or name contains `piece`, ignoring case (ASCII on SQLite, where Chinese
    has none), through the trigram index when the piece is long enough."""
    pattern = escaped_like(piece)
    if dialect == "sqlite":
        # SQLite's LIKE ignores ASCII case itself; lower() on both sides would cost a call per row.
        matched = or_(Outlet.name.like(pattern, escape="\\"), Outlet.id.like(pattern, escape="\\"))
        if len(piece) < TRIGRAM:
            return matched
        phrase = '"' + piece.replace('"', '""') + '"'
        found = (
            select(literal_column("rowid"))
            .select_from(table(FTS_TABLE))
            .where(text(f"{FTS_TABLE} MATCH :phrase").bindparams(phrase=phrase))
        )
        return and_(literal_column("outlet.rowid").in_(found), matched)
    return or_(Outlet.name.ilike(pattern, escape="\\"), Outlet.id.ilike(pattern, escape="\\"))
