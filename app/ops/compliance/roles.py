"""Who held which role in an area at a time ("who could approve grants in Tianhe on 3 March"): the
role assignments of the area and of the departments above it (whose roles reach into it), as they
stood then, each with who gave it and when (app/store/role_history.py). For auditors and
administrators, in their own subtree, like the other compliance questions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.regions import ancestor_paths
from app.ops.auth import Actor
from app.ops.compliance.history import audited_tenant, checked_moment
from app.ops.principals.reach import role_input
from app.store.role_history import DatedRole, roles_at


@dataclass(frozen=True)
class RoleHolders:
    at: datetime
    holders: list[DatedRole]


async def role_holders(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    tenant: str,
    at: datetime | None = None,
    *,
    role: str | None = None,
    request_id: str | None = None,
) -> RoleHolders:
    """The roles held at `at` (default: now) in `tenant`'s subtree and above it (`role`: that one)."""
    path = await audited_tenant(sessions, actor, tenant, request_id)
    wanted = role_input(role) if role is not None else None
    async with sessions() as session:
        moment = await checked_moment(session, at)
        found = await roles_at(session, moment, path, ancestor_paths(path)[:-1])
    return RoleHolders(moment, [r for r in found if wanted in (None, r.role)])
