"""audit_verification: each `ssc audit verify` run over the database and what it found

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 16:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.store.tables.common

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_verification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", app.store.tables.common.UTCDateTime(), nullable=False),
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("chains", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("breaks", sa.Integer(), nullable=False),
        sa.Column("problems", sa.Integer(), nullable=False),
        sa.Column("checkpoint_id", sa.BigInteger(), nullable=True),
        sa.Column("first_finding", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_verification")),
    )


def downgrade() -> None:
    op.drop_table("audit_verification")
