"""compliance: the role assignments' history (removed roles kept, when a person was deactivated)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 15:00:00.000000

A removed role assignment becomes a `role_assignment_ended` row, and a deactivated person keeps the
time of deactivation, so who held which role at any past time can be answered. What happened before
this migration is read back from the audit trail, which has recorded every role removal and
deactivation: a removed role's start is the latest assignment of it before the removal (the
person's creation, when the trail does not say), and its actors are the events' actors.
"""

from collections.abc import Sequence

import orjson
import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.store.tables.common

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = app.store.tables.common.UTCDateTime()
ASSIGNED = ("principal.create", "principal.assign_role")


def _backfill() -> None:
    bind = op.get_bind()
    event = sa.table(
        "audit_event",
        sa.column("id", sa.BigInteger),
        sa.column("at", UTC_TIME),
        sa.column("actor", sa.String),
        sa.column("action", sa.String),
        sa.column("target_id", sa.String),
        sa.column("detail", sa.Text),
    )
    principal = sa.table(
        "principal",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("created_at", UTC_TIME),
        sa.column("active", sa.Boolean),
        sa.column("deactivated_at", UTC_TIME),
    )
    people = {row.name: row for row in bind.execute(sa.select(principal))}
    rows = bind.execute(
        sa.select(event.c.at, event.c.actor, event.c.action, event.c.target_id, event.c.detail)
        .where(event.c.action.in_((*ASSIGNED, "principal.remove_role", "principal.deactivate")))
        .order_by(event.c.id)
    )
    assigned: dict[tuple[str, str, str], tuple] = {}  # (name, role, tenant) -> (at, actor)
    ended, deactivated = [], {}
    for at, actor, action, name, detail in rows:
        person = people.get(name)
        if person is None:
            continue
        facts = orjson.loads(detail) if detail else {}
        key = (name, facts.get("role"), facts.get("tenant"))
        if action in ASSIGNED:
            assigned[key] = (at, actor)
        elif action == "principal.remove_role" and None not in key:
            since, by = assigned.pop(key, (person.created_at, None))
            ended.append(
                {
                    "principal_id": person.id,
                    "tenant": key[2],
                    "role": key[1],
                    "added_at": since,
                    "added_by": by,
                    "removed_at": at,
                    "removed_by": actor,
                }
            )
        elif action == "principal.deactivate" and not person.active:
            deactivated[person.id] = at
    if ended:
        columns = [sa.column(c, UTC_TIME if c.endswith("_at") else None) for c in ended[0]]
        bind.execute(sa.table("role_assignment_ended", *columns).insert(), ended)
    stamp = (
        sa.update(principal)
        .where(principal.c.id == sa.bindparam("person"))
        .values(deactivated_at=sa.bindparam("at", type_=UTC_TIME))
    )
    if deactivated:
        bind.execute(stamp, [{"person": p, "at": at} for p, at in deactivated.items()])


def upgrade() -> None:
    op.create_table(
        "role_assignment_ended",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("principal_id", sa.Integer(), nullable=False),
        sa.Column("tenant", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("added_at", UTC_TIME, nullable=False),
        sa.Column("added_by", sqlmodel.sql.sqltypes.AutoString(length=96), nullable=True),
        sa.Column("removed_at", UTC_TIME, nullable=False),
        sa.Column("removed_by", sqlmodel.sql.sqltypes.AutoString(length=96), nullable=True),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principal.id"],
            name=op.f("fk_role_assignment_ended_principal_id_principal"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_role_assignment_ended")),
    )
    with op.batch_alter_table("role_assignment_ended", schema=None) as batch_op:
        batch_op.create_index("ix_role_assignment_ended_tenant", ["tenant"], unique=False)
    with op.batch_alter_table("principal", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deactivated_at", UTC_TIME, nullable=True))
    _backfill()


def downgrade() -> None:
    with op.batch_alter_table("principal", schema=None) as batch_op:
        batch_op.drop_column("deactivated_at")
    with op.batch_alter_table("role_assignment_ended", schema=None) as batch_op:
        batch_op.drop_index("ix_role_assignment_ended_tenant")
    op.drop_table("role_assignment_ended")
