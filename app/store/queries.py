"""SQL the use cases of every area share."""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, or_
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.regions import ancestor_paths, subtree_bounds
from app.domain.settings import EffectiveSettings, effective
from app.store.tables import Outlet, Tenant


def in_subtree(column, path: str) -> ColumnElement[bool]:
    """SQL for "column is `path` or below it" (see `subtree_bounds`)."""
    low, high = subtree_bounds(path)
    return (column >= low) & (column < high)


def in_any_subtree(column, paths) -> ColumnElement[bool]:
    """SQL for "column is in one of the subtrees of `paths`" (false when there are none)."""
    return or_(false(), *(in_subtree(column, path) for path in paths))


async def outlet_with_path(session: AsyncSession, outlet_id: str) -> tuple[Outlet, str] | None:
    """An outlet and its department's path (what every rule about the outlet is decided on), or None."""
    found = (
        await session.exec(
            select(Outlet, Tenant.path)
            .join(Tenant, Tenant.id == Outlet.tenant_id)
            .where(Outlet.id == outlet_id)
        )
    ).first()
    return (found[0], found[1]) if found else None


async def tenant_chain(session: AsyncSession, tenant_path: str) -> list[Tenant]:
    """The tenant and its ancestors that exist, top-most first."""
    paths = ancestor_paths(tenant_path)
    rows = {t.path: t for t in (await session.exec(select(Tenant).where(Tenant.path.in_(paths)))).all()}
    return [rows[path] for path in paths if path in rows]


async def effective_settings(session: AsyncSession, tenant_path: str) -> EffectiveSettings:
    """The department settings in force at `tenant_path` (app/domain/settings.py), read in one query:
    grants (two-person approval) and card services (PIN lock threshold) both decide on them."""
    return effective(await tenant_chain(session, tenant_path))
