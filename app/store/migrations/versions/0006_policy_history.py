"""compliance: the policy's history (when each line was added and removed, and by whom)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:05:00.000000

Lines already there are dated from the change log, which has recorded every add and remove since the
first migration: each current line gets the time of its last `add`, and every line that was added
and removed since becomes a `policy_line_ended` row. Their actor is unknown (NULL): the log never
kept it; the audit trail has it.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import orjson
import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.store.tables.common

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIME = app.store.tables.common.UTCDateTime()
VALUES = [f"v{i}" for i in range(7)]


def _source(ptype: str, rule: list[str]) -> tuple[str, str]:
    """What a logged line projected, as far as the line itself says (the log has no source)."""
    if ptype == "g":
        return "outlet", rule[0].removeprefix("outlet:")
    if ptype == "p":
        return ("block" if rule[3] == "deny" else "grant"), rule[6]
    if ptype == "s":
        return "grant", rule[4]
    return "ceiling", ""


def _backfill() -> None:
    bind = op.get_bind()
    change = sa.table(
        "policy_change",
        sa.column("id", sa.BigInteger),
        sa.column("op", sa.String),
        sa.column("ptype", sa.String),
        sa.column("rule", sa.Text),
        sa.column("at", UTC_TIME),
    )
    line = sa.table(
        "policy_line", sa.column("id", sa.Integer), sa.column("ptype", sa.String), *map(sa.column, VALUES)
    )
    ended = sa.table(
        "policy_line_ended",
        *(sa.column(c) for c in ("ptype", *VALUES, "source", "source_id")),
        sa.column("added_at", UTC_TIME),
        sa.column("removed_at", UTC_TIME),
    )
    added: dict[tuple, list[datetime]] = {}
    ended_rows = []
    rows = bind.execute(
        sa.select(change.c.op, change.c.ptype, change.c.rule, change.c.at)
        .order_by(change.c.id)
        .execution_options(yield_per=50_000)
    )
    for op_, ptype, rule, at in rows:
        key = (ptype, *orjson.loads(rule))
        if op_ == "add":
            added.setdefault(key, []).append(at)
        elif added.get(key):
            values = list(key[1:]) + [None] * (7 - len(key[1:]))
            source, source_id = _source(ptype, list(key[1:]))
            ended_rows.append(
                {
                    "ptype": ptype,
                    **dict(zip(VALUES, values, strict=True)),
                    "source": source,
                    "source_id": source_id,
                    "added_at": added[key].pop(),
                    "removed_at": at,
                }
            )
    for start in range(0, len(ended_rows), 10_000):
        bind.execute(ended.insert(), ended_rows[start : start + 10_000])
    now = datetime.now(UTC)
    updates = []
    for row in bind.execute(sa.select(line.c.id, line.c.ptype, *(line.c[v] for v in VALUES))):
        key = (row.ptype, *(v for v in row[2:] if v is not None))
        times = added.get(key)
        updates.append({"line_id": row.id, "at": times.pop() if times else now})
    stamp = (
        sa.update(sa.table("policy_line", sa.column("id"), sa.column("added_at", UTC_TIME)))
        .where(sa.column("id") == sa.bindparam("line_id"))
        .values(added_at=sa.bindparam("at", type_=UTC_TIME))
    )
    for start in range(0, len(updates), 10_000):
        bind.execute(stamp, updates[start : start + 10_000])


def upgrade() -> None:
    op.create_table(
        "policy_line_ended",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("ptype", sqlmodel.sql.sqltypes.AutoString(length=4), nullable=False),
        sa.Column("v0", sqlmodel.sql.sqltypes.AutoString(length=96), nullable=False),
        sa.Column("v1", sqlmodel.sql.sqltypes.AutoString(length=96), nullable=False),
        sa.Column("v2", sqlmodel.sql.sqltypes.AutoString(length=96), nullable=False),
        sa.Column("v3", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("v4", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("v5", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("v6", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("source_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("added_at", UTC_TIME, nullable=False),
        sa.Column("added_by", sqlmodel.sql.sqltypes.AutoString(length=96), nullable=True),
        sa.Column("removed_at", UTC_TIME, nullable=False),
        sa.Column("removed_by", sqlmodel.sql.sqltypes.AutoString(length=96), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_line_ended")),
    )
    with op.batch_alter_table("policy_line", schema=None) as batch_op:
        batch_op.add_column(sa.Column("added_at", UTC_TIME, nullable=True))
        batch_op.add_column(sa.Column("added_by", sqlmodel.sql.sqltypes.AutoString(length=96), nullable=True))
    _backfill()
    with op.batch_alter_table("policy_line", schema=None) as batch_op:
        batch_op.alter_column("added_at", existing_type=UTC_TIME, nullable=False)
        batch_op.create_index("ix_policy_line_ptype_v0", ["ptype", "v0"], unique=False)
        batch_op.create_index("ix_policy_line_ptype_v2", ["ptype", "v2"], unique=False)
    with op.batch_alter_table("policy_line_ended", schema=None) as batch_op:
        batch_op.create_index("ix_policy_line_ended_ptype_v0", ["ptype", "v0"], unique=False)
        batch_op.create_index("ix_policy_line_ended_ptype_v2", ["ptype", "v2"], unique=False)
        batch_op.create_index("ix_policy_line_ended_source", ["source", "source_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("policy_line", schema=None) as batch_op:
        batch_op.drop_index("ix_policy_line_ptype_v2")
        batch_op.drop_index("ix_policy_line_ptype_v0")
        batch_op.drop_column("added_by")
        batch_op.drop_column("added_at")
    op.drop_table("policy_line_ended")
