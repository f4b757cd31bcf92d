"""People as administrators see them: only the roles within the viewer's reach, tokens by prefix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import aliased
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.ops.auth import Actor, authorize
from app.ops.errors import OpsError
from app.ops.principals.reach import deny_refused, name_input, out_of_reach, roles_of, tenant_input, visible
from app.store.queries import in_subtree
from app.store.tables import PersonalToken, Principal, RoleAssignment, Tenant


@dataclass(frozen=True)
class TokenView:
    id: int
    prefix: str
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime
    one_time: bool = False


@dataclass(frozen=True)
class PrincipalView:
    id: int
    name: str
    display_name: str
    active: bool
    version: int
    created_at: datetime
    created_by: str | None
    roles: tuple[tuple[str, str], ...]  # only those in the viewer's reach
    tokens: tuple[TokenView, ...]


async def views_of(session: AsyncSession, actor: Actor, ids: Sequence[int]) -> list[PrincipalView]:
    """Principals `ids` in that order, each with the roles the actor may see and their tokens."""
    if not ids:
        return []
    creator = aliased(Principal)
    rows = {
        p.id: (p, by)
        for p, by in (
            await session.exec(
                select(Principal, creator.name)
                .outerjoin(creator, creator.id == Principal.created_by)
                .where(Principal.id.in_(ids))
            )
        ).all()
    }
    roles = await roles_of(session, ids)
    tokens: dict[int, list[TokenView]] = {pid: [] for pid in ids}
    for t in (
        await session.exec(
            select(PersonalToken).where(PersonalToken.principal_id.in_(ids)).order_by(PersonalToken.id)
        )
    ).all():
        tokens[t.principal_id].append(
            TokenView(t.id, t.prefix, t.expires_at, t.revoked_at, t.created_at, t.one_time)
        )
    views = []
    for pid in ids:
        p, by = rows[pid]
        own = pid == actor.principal_id
        shown = tuple(r for r in roles[pid] if own or actor.guard.can("read", "principal", r[1]))
        views.append(
            PrincipalView(
                pid, p.name, p.display_name, p.active, p.version, p.created_at, by, shown, tuple(tokens[pid])
            )
        )
    return views


def cursor_id(after: str | None) -> int:
    if after is None:
        return 0
    try:
        return int(after)
    except ValueError:
        raise OpsError("BAD_INPUT", "not a cursor from this list", field="after") from None


async def list_principals(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    *,
    tenant: str,
    after: str | None,
    limit: int,
    request_id: str | None = None,
) -> tuple[list[PrincipalView], int]:
    """People holding a role in `tenant`'s subtree, keyset-paged by principal id."""
    path = tenant_input(tenant).path
    await authorize(sessions, actor, "read", "principal", path, request_id=request_id)
    members = (
        select(RoleAssignment.principal_id)
        .join(Tenant, Tenant.id == RoleAssignment.tenant_id)
        .where(in_subtree(Tenant.path, path))
    )
    async with sessions() as session:
        total = (
            await session.exec(select(func.count()).select_from(Principal).where(Principal.id.in_(members)))
        ).one()
        ids = (
            await session.exec(
                select(Principal.id)
                .where(Principal.id.in_(members), Principal.id > cursor_id(after))
                .order_by(Principal.id)
                .limit(limit + 1)
            )
        ).all()
        return await views_of(session, actor, ids), total


async def get_principal(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, name: str, *, request_id: str | None = None
) -> PrincipalView:
    name = name_input(name)
    async with sessions() as session:
        row = (await session.exec(select(Principal.id).where(Principal.name == name))).first()
        roles = (await roles_of(session, [row]))[row] if row is not None else []
        if row is not None and visible(actor, row, roles):
            return (await views_of(session, actor, [row]))[0]
    raise await deny_refused(sessions, actor, out_of_reach("principal.read", actor, name), request_id)


async def view_of(session: AsyncSession, actor: Actor, principal_id: int) -> PrincipalView:
    return (await views_of(session, actor, [principal_id]))[0]
