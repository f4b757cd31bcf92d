"""Who held which role at any time: the role assignments in force then.

`role_assignment` holds the roles held now (each with when and by whom it was given); a removed one
moves to `role_assignment_ended` with when and by whom it was taken (app/ops/principals/admin.py),
and a deactivated person's roles end at `principal.deactivated_at`. As with the policy's history
(app/store/policy_history.py), the roles in force at `at` are those given at or before `at` and not
yet taken, of people not yet deactivated.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import String, literal, or_, select, union_all
from sqlalchemy.orm import aliased
from sqlmodel.ext.asyncio.session import AsyncSession

from app.store.queries import in_subtree
from app.store.tables import Principal, RoleAssignment, RoleAssignmentEnded, Tenant


class DatedRole(NamedTuple):
    """A role a person held, with its life: who gave it when, and (if it ended) who took it when."""

    name: str
    display_name: str
    role: str
    tenant: str
    added_at: datetime
    added_by: str | None
    removed_at: datetime | None  # taken away, or the person deactivated; None: held still
    removed_by: str | None


async def roles_at(session: AsyncSession, at: datetime, under: str, above: Sequence[str]) -> list[DatedRole]:
    """The roles in force at `at` in `under`'s subtree or at one of the tenants `above` it."""
    giver = aliased(Principal)
    live, ended = RoleAssignment.__table__, RoleAssignmentEnded.__table__
    person = Principal.__table__
    still_active = or_(person.c.deactivated_at.is_(None), person.c.deactivated_at > at)
    held = (
        select(
            person.c.name,
            person.c.display_name,
            live.c.role,
            Tenant.path.label("tenant"),
            live.c.created_at.label("added_at"),
            (literal("principal:", String) + giver.name).label("added_by"),
            person.c.deactivated_at.label("removed_at"),
            literal(None, String).label("removed_by"),
        )
        .join(person, person.c.id == live.c.principal_id)
        .join(Tenant, Tenant.id == live.c.tenant_id)
        .outerjoin(giver, giver.id == live.c.created_by)
        .where(
            live.c.created_at <= at,
            still_active,
            or_(in_subtree(Tenant.path, under), Tenant.path.in_(above)),
        )
    )
    was_held = (
        select(
            person.c.name,
            person.c.display_name,
            ended.c.role,
            ended.c.tenant,
            ended.c.added_at,
            ended.c.added_by,
            ended.c.removed_at,
            ended.c.removed_by,
        )
        .join(person, person.c.id == ended.c.principal_id)
        .where(
            ended.c.added_at <= at,
            ended.c.removed_at > at,
            still_active,
            or_(in_subtree(ended.c.tenant, under), ended.c.tenant.in_(above)),
        )
    )
    rows = (await session.exec(union_all(held, was_held))).all()
    return sorted((DatedRole(*row) for row in rows), key=lambda r: (r.tenant, r.role, r.name))
