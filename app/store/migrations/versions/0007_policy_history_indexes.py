"""compliance: covering indexes for the policy at a past time

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 14:00:00.000000

`whoCan` reads, for one card service and one domain, the subjects of the lines in force at a time,
and the open outlets below a tenant. The (ptype, v2) indexes found the lines but every line then
cost a read of its table row; these indexes hold every column those questions read, in the order
they are asked (a service's lines by domain and effect, then the time bound), so the database
answers from the index alone. They replace the (ptype, v2) ones, of which they are an extension.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = ["ptype", "v2", "v1", "v3", "added_at", "v0", "v4", "v5"]
ENDED = ["ptype", "v2", "v1", "v3", "removed_at", "added_at", "v0", "v4", "v5"]


def upgrade() -> None:
    with op.batch_alter_table("policy_line", schema=None) as batch_op:
        batch_op.drop_index("ix_policy_line_ptype_v2")
        batch_op.create_index("ix_policy_line_history", LIVE, unique=False)
    with op.batch_alter_table("policy_line_ended", schema=None) as batch_op:
        batch_op.drop_index("ix_policy_line_ended_ptype_v2")
        batch_op.create_index("ix_policy_line_ended_history", ENDED, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("policy_line_ended", schema=None) as batch_op:
        batch_op.drop_index("ix_policy_line_ended_history")
        batch_op.create_index("ix_policy_line_ended_ptype_v2", ["ptype", "v2"], unique=False)
    with op.batch_alter_table("policy_line", schema=None) as batch_op:
        batch_op.drop_index("ix_policy_line_history")
        batch_op.create_index("ix_policy_line_ptype_v2", ["ptype", "v2"], unique=False)
