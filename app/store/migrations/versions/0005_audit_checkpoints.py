"""compliance: signed audit checkpoints, archive boundaries, audit events immutable on PostgreSQL

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.store.tables.common

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Only `ssc audit archive` removes audit events, and nothing changes them: it sets
# ssc.audit_archiving for its own transaction. This guards against a mistaken statement or a
# compromised application account; the signed checkpoints are what proves the trail intact.
IMMUTABLE_FUNCTION = """
CREATE FUNCTION ssc_audit_event_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'TRUNCATE') AND current_setting('ssc.audit_archiving', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit events cannot be changed or removed (%); ssc audit archive moves old ones', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "audit_checkpoint",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("at", app.store.tables.common.UTCDateTime(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("through_event", sa.BigInteger(), nullable=False),
        sa.Column("heads", sa.Text(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("signature", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoint")),
    )
    op.create_table(
        "audit_archive",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("checkpoint_id", BIG_ID, nullable=False),
        sa.Column("file", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("archived_at", app.store.tables.common.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["checkpoint_id"],
            ["audit_checkpoint.id"],
            name=op.f("fk_audit_archive_checkpoint_id_audit_checkpoint"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_archive")),
        sa.UniqueConstraint("tenant", "seq", name="uq_audit_archive_tenant_seq"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(IMMUTABLE_FUNCTION)
        op.execute(
            "CREATE TRIGGER audit_event_immutable BEFORE UPDATE OR DELETE ON audit_event "
            "FOR EACH ROW EXECUTE FUNCTION ssc_audit_event_immutable()"
        )
        op.execute(
            "CREATE TRIGGER audit_event_not_truncated BEFORE TRUNCATE ON audit_event "
            "FOR EACH STATEMENT EXECUTE FUNCTION ssc_audit_event_immutable()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_event_not_truncated ON audit_event")
        op.execute("DROP TRIGGER audit_event_immutable ON audit_event")
        op.execute("DROP FUNCTION ssc_audit_event_immutable()")
    op.drop_table("audit_archive")
    op.drop_table("audit_checkpoint")
