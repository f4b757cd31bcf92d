"""security review: the credential of every audit event, one-time enrolment tokens, PIN lock history

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 06:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.store.tables.common

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("credential", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
    with op.batch_alter_table("personal_token", schema=None) as batch_op:
        batch_op.add_column(sa.Column("one_time", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("card", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pin_locks", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("pin_locks_since", app.store.tables.common.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("card", schema=None) as batch_op:
        batch_op.drop_column("pin_locks_since")
        batch_op.drop_column("pin_locks")
    with op.batch_alter_table("personal_token", schema=None) as batch_op:
        batch_op.drop_column("one_time")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_column("credential")
