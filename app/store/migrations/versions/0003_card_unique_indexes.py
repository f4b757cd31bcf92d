"""card: unique indexes instead of unique constraints; no index on the bank card hash

The initial load of a card file drops the card table's secondary indexes and builds them once at
the end; on SQLite a UNIQUE table constraint is an index that cannot be dropped, a unique index can.
Nothing looks cards up by bank card hash alone (it is compared on the card found by ID hash).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 00:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("card", schema=None) as batch_op:
        batch_op.drop_index("ix_card_bank_card_hash")
        batch_op.drop_constraint("uq_card_serial", type_="unique")
        batch_op.drop_constraint("uq_card_tenant_number", type_="unique")
        batch_op.create_index("uq_card_serial", ["card_serial"], unique=True)
        batch_op.create_index("uq_card_tenant_number", ["issuing_tenant_id", "card_number"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("card", schema=None) as batch_op:
        batch_op.drop_index("uq_card_tenant_number")
        batch_op.drop_index("uq_card_serial")
        batch_op.create_unique_constraint("uq_card_tenant_number", ["issuing_tenant_id", "card_number"])
        batch_op.create_unique_constraint("uq_card_serial", ["card_serial"])
        batch_op.create_index("ix_card_bank_card_hash", ["bank_card_hash"], unique=False)
