"""Read use cases for tenants."""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.regions import parse_tenant_path
from app.store.tables import Tenant


async def list_tenants(session: AsyncSession) -> list[Tenant]:
    return list((await session.exec(select(Tenant).order_by(Tenant.path))).all())


async def get_tenant(session: AsyncSession, path: str) -> Tenant | None:
    """Raises DomainError(BAD_TENANT_PATH) for a malformed path; None when no such tenant exists."""
    parsed = parse_tenant_path(path)
    return (await session.exec(select(Tenant).where(Tenant.path == parsed.path))).first()
