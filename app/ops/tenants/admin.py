"""Read use cases for tenants, limited to the caller's subtrees."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.ops.auth import Actor, authorize
from app.ops.inputs import parse_tenant
from app.store.queries import in_subtree
from app.store.tables import Tenant


async def list_tenants(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    *,
    under: str | None,
    after: str | None,
    limit: int,
    request_id: str | None = None,
) -> tuple[list[Tenant], int]:
    """Tenants in `under`'s subtree (default: all the caller may read), keyset-paged by path."""
    if under is not None:
        under = parse_tenant(under, "under")
        await authorize(sessions, actor, "read", "tenant", under, request_id=request_id)
        scopes = [under]
    else:
        scopes = [s for s in actor.guard.scopes() if actor.guard.can("read", "tenant", s)]
    if not scopes:
        return [], 0
    where = or_(*(in_subtree(Tenant.path, s) for s in scopes))
    async with sessions() as session:
        total = (await session.exec(select(func.count()).select_from(Tenant).where(where))).one()
        query = select(Tenant).where(where).order_by(Tenant.path).limit(limit + 1)
        if after is not None:
            query = query.where(Tenant.path > after)
        return list((await session.exec(query)).all()), total


async def get_tenant(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, path: str, *, request_id: str | None = None
) -> Tenant | None:
    """FORBIDDEN outside the caller's reach whether or not the tenant exists; None inside when missing."""
    path = parse_tenant(path, "path")
    await authorize(sessions, actor, "read", "tenant", path, request_id=request_id)
    async with sessions() as session:
        return (await session.exec(select(Tenant).where(Tenant.path == path))).first()
