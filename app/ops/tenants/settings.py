"""Department settings as the use cases read and change them; the inheritance rule itself is in
app/domain/settings.py, and the read every area shares in app/store/queries.effective_settings."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.settings import EffectiveSettings, required_above
from app.ops.auth import Actor, authorize
from app.store.queries import effective_settings, tenant_chain


async def settings_in_force(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    tenant_path: str,
    *,
    request_id: str | None = None,
) -> EffectiveSettings:
    """The settings in force at a department, shown beside its own values to those who may read it."""
    await authorize(
        sessions, actor, "read", "tenant", tenant_path, target_id=tenant_path, request_id=request_id
    )
    async with sessions() as session:
        return await effective_settings(session, tenant_path)


async def loosening_refusal(
    session: AsyncSession, tenant_path: str, two_person_approval: bool | None
) -> str | None:
    """Why `tenant_path` may not turn two-person approval off, or None: an ancestor requires it."""
    if two_person_approval is not False:
        return None
    chain = await tenant_chain(session, tenant_path)
    above = required_above(tenant_path, {row.path: row.two_person_approval for row in chain})
    if above is None:
        return None
    return (
        f"{above} requires two-person approval for every department below it; a department may "
        f"tighten it, never loosen it: only {above} can turn it off"
    )
