"""Partner API keys, as administrators issue, list and revoke them: an outlet's keys are managed by
those who may change the outlet (FORBIDDEN otherwise, whether or not the outlet exists)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.regions import ROOT
from app.ops.auth import Actor, authorize
from app.ops.errors import not_found
from app.ops.partner_keys.keys import (
    IssuedKey,
    KeyView,
    check_revocation,
    create_partner_key,
    find_key,
    forget_keys,
    revoke_key,
)
from app.ops.refusals import audited_use_case
from app.store.tables import Outlet, PartnerKey, Tenant


@audited_use_case("partner_key.create")
async def issue_partner_key(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    outlet_id: str,
    *,
    days: int,
    rate_limit: str | None = None,
    request_id: str | None = None,
    max_rate_limit: str | None = None,
    max_keys: int | None = None,
) -> IssuedKey:
    """An administrator issues a key for an outlet they may change (FORBIDDEN otherwise, whether or
    not the outlet exists; DESIGN.md §7). `max_rate_limit`, `max_keys`: see `create_partner_key`."""
    path = await _outlet_path(sessions, outlet_id)
    await _authorize(sessions, actor, path, outlet_id, request_id)
    if path is None:
        raise not_found("outlet", outlet_id)
    async with sessions() as session, session.begin():
        return await create_partner_key(
            session,
            outlet_id,
            days=days,
            actor=actor.label,
            credential=actor.credential,
            rate_limit=rate_limit,
            created_by=actor.principal_id,
            request_id=request_id,
            max_rate_limit=max_rate_limit,
            max_keys=max_keys,
        )


@audited_use_case("partner_key.revoke")
async def revoke_partner_key(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    *,
    key_id: int | None,
    prefix: str | None,
    reason: str,
    outlet_id: str | None = None,
    request_id: str | None = None,
) -> KeyView:
    """An administrator revokes a key of an outlet they may change; FORBIDDEN for any other key,
    whether or not it exists. With `outlet_id`, a key of another outlet is answered as a missing one
    (the console revokes keys from an outlet's page)."""
    reason = check_revocation(key_id, prefix, reason)
    async with sessions() as session:
        found = await find_key(session, key_id, prefix)
    if found is not None and outlet_id is not None and found[1].outlet_id != outlet_id:
        found = None
    name = str(key_id) if key_id is not None else str(prefix)
    await _authorize(sessions, actor, found[0] if found else None, f"partner_key:{name}", request_id)
    if found is None:
        raise not_found("partner key", name)
    async with sessions() as session, session.begin():
        view = await revoke_key(
            session,
            key_id=key_id,
            prefix=prefix,
            reason=reason,
            actor=actor.label,
            credential=actor.credential,
            request_id=request_id,
        )
    # After the commit: forgetting earlier would let a concurrent call re-verify the key as still valid.
    forget_keys({view.row.id})
    return view


def may_read_keys(actor: Actor, tenant_path: str) -> bool:
    """Whether the person may list the keys of an outlet of this department (prefix, state, expiry and
    limit; never a key): whoever may read the outlet there, auditors included."""
    return actor.guard.can("read", "outlet", tenant_path)


async def keys_for(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    outlets: list[tuple[str, str]],
    *,
    request_id: str | None = None,
) -> list[list[PartnerKey] | None]:
    """A batch of outlets' keys (a DataLoader's batch of (outlet id, its tenant path)), newest first,
    in the order asked, in one query; None for an outlet whose keys the caller may not read."""
    readable = [outlet_id for outlet_id, path in outlets if may_read_keys(actor, path)]
    found: dict[str, list[PartnerKey]] = {outlet_id: [] for outlet_id in readable}
    if readable:
        async with sessions() as session:
            rows = (
                await session.exec(
                    select(PartnerKey)
                    .where(PartnerKey.outlet_id.in_(readable))
                    .order_by(PartnerKey.created_at.desc(), PartnerKey.id.desc())
                )
            ).all()
        for row in rows:
            found[row.outlet_id].append(row)
    return [found.get(outlet_id) for outlet_id, _ in outlets]


async def _outlet_path(sessions: async_sessionmaker[AsyncSession], outlet_id: str) -> str | None:
    async with sessions() as session:
        return (
            await session.exec(
                select(Tenant.path).join(Outlet, Outlet.tenant_id == Tenant.id).where(Outlet.id == outlet_id)
            )
        ).first()


async def _authorize(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    path: str | None,
    target: str,
    request_id: str | None,
) -> None:
    """Write access to outlets of the department; an unknown target is checked against the whole
    country, so only someone whose reach is national learns that it does not exist."""
    await authorize(sessions, actor, "write", "outlet", path or ROOT, target_id=target, request_id=request_id)
