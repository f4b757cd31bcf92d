"""console reads: a trigram index of outlet codes and names (SQLite FTS5, PostgreSQL pg_trgm), and
when each credential last acted (audit_event by credential and time)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 17:20:00.000000

See app/store/outlet_search.py. On PostgreSQL, pg_trgm is a trusted extension (13+): the database's
owner may create it.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE = (
    "CREATE VIRTUAL TABLE outlet_search USING fts5(id, name, content='outlet', tokenize='trigram')",
    """CREATE TRIGGER outlet_search_insert AFTER INSERT ON outlet BEGIN
        INSERT INTO outlet_search(rowid, id, name) VALUES (new.rowid, new.id, new.name);
    END""",
    """CREATE TRIGGER outlet_search_delete AFTER DELETE ON outlet BEGIN
        INSERT INTO outlet_search(outlet_search, rowid, id, name)
            VALUES ('delete', old.rowid, old.id, old.name);
    END""",
    """CREATE TRIGGER outlet_search_update AFTER UPDATE OF id, name ON outlet BEGIN
        INSERT INTO outlet_search(outlet_search, rowid, id, name)
            VALUES ('delete', old.rowid, old.id, old.name);
        INSERT INTO outlet_search(rowid, id, name) VALUES (new.rowid, new.id, new.name);
    END""",
    "INSERT INTO outlet_search(outlet_search) VALUES ('rebuild')",
)
POSTGRESQL = (
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_outlet_id_trgm ON outlet USING gin (id gin_trgm_ops)",
    "CREATE INDEX ix_outlet_name_trgm ON outlet USING gin (name gin_trgm_ops)",
)


def upgrade() -> None:
    op.create_index("ix_audit_credential_at", "audit_event", ["credential", "at"])
    for statement in SQLITE if op.get_bind().dialect.name == "sqlite" else POSTGRESQL:
        op.execute(statement)


def downgrade() -> None:
    op.drop_index("ix_audit_credential_at", table_name="audit_event")
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER outlet_search_{trigger}")
        op.execute("DROP TABLE outlet_search")
    else:
        op.execute("DROP INDEX ix_outlet_name_trgm")
        op.execute("DROP INDEX ix_outlet_id_trgm")
