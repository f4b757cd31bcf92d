"""Tenants (departments) as administrators read them, limited to the caller's subtrees, and a
department's own settings.

A tenant's own settings: a cleared (NULL) setting follows the nearest ancestor that sets it
(app/domain/settings.py), so clearing restores inheritance. Two-person
approval that an ancestor requires cannot be turned off here (FORBIDDEN): only that ancestor can.

`ssc tenants apply` also owns these two columns: it writes the file's value, an absent key included
(as NULL), so a later apply undoes what was set here for a tenant declared in the files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.card import validate_pin_lock_threshold
from app.domain.regions import ancestor_paths, dom_in
from app.domain.settings import EffectiveSettings, effective
from app.ops.auth import Actor, authorize
from app.ops.errors import OpsError, check_version, not_found
from app.ops.inputs import parse_input, parse_tenant
from app.ops.refusals import audited_use_case
from app.ops.tenants.settings import loosening_refusal
from app.store.audit import append_event
from app.store.queries import in_any_subtree
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
    where = in_any_subtree(Tenant.path, scopes)
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


_UNCHANGED = object()


def _wanted(value: object, clear: bool, field: str) -> object:
    if clear and value is not None:
        raise OpsError("BAD_INPUT", f"either set {field} or clear it, not both", field=field)
    if clear:
        return None
    return _UNCHANGED if value is None else value


def _settings(row: Tenant) -> dict[str, object]:
    return {"two_person_approval": row.two_person_approval, "pin_lock_threshold": row.pin_lock_threshold}


@audited_use_case("tenant_settings.update")
async def update_tenant_settings(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    *,
    tenant: str,
    expected_version: int,
    two_person_approval: bool | None = None,
    pin_lock_threshold: int | None = None,
    clear_two_person_approval: bool = False,
    clear_pin_lock_threshold: bool = False,
    request_id: str | None = None,
) -> Tenant:
    """Set or clear the tenant's own values; a request that changes nothing writes nothing."""
    path = parse_tenant(tenant)
    if pin_lock_threshold is not None:
        parse_input("pinLockThreshold", validate_pin_lock_threshold, pin_lock_threshold)
    wanted = {
        "two_person_approval": _wanted(two_person_approval, clear_two_person_approval, "twoPersonApproval"),
        "pin_lock_threshold": _wanted(pin_lock_threshold, clear_pin_lock_threshold, "pinLockThreshold"),
    }
    await authorize(sessions, actor, "write", "tenant_settings", path, request_id=request_id)
    async with sessions() as session, session.begin():
        row = (await session.exec(select(Tenant).where(Tenant.path == path).with_for_update())).first()
        if row is None:
            raise not_found("tenant", path)
        check_version(f"the settings of {path}", row.version, expected_version)
        before = _settings(row)
        after = {k: before[k] if v is _UNCHANGED else v for k, v in wanted.items()}
        if after == before:
            return row
        refusal = await loosening_refusal(session, path, after["two_person_approval"])
        if refusal is not None:
            raise OpsError("FORBIDDEN", refusal, field="twoPersonApproval")
        row.two_person_approval = after["two_person_approval"]
        row.pin_lock_threshold = after["pin_lock_threshold"]
        row.version += 1
        row.updated_at = datetime.now(UTC)
        await append_event(
            session,
            tenant=path,
            actor=actor.label,
            credential=actor.credential,
            action="tenant_settings.update",
            target_type="tenant",
            target_id=path,
            request_id=request_id,
            detail={"before": before, "after": after, "version": row.version},
        )
        return row


@dataclass(frozen=True)
class TreeNode:
    tenant: Tenant
    settings: EffectiveSettings
    depth: int  # levels below the top of the caller's area


async def area_tree(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    *,
    limit: int = 5_000,
    request_id: str | None = None,
) -> list[TreeNode]:
    """The departments the caller may read, in path order (a tree read top-down), each with the
    settings in force there: two queries whatever the size of the area (its departments, and the
    departments above it that settings are inherited from)."""
    scopes = [s for s in actor.guard.scopes() if actor.guard.can("read", "tenant", s)]
    if not scopes:
        return []
    async with sessions() as session:
        rows = list(
            (
                await session.exec(
                    select(Tenant)
                    .where(in_any_subtree(Tenant.path, scopes))
                    .order_by(Tenant.path)
                    .limit(limit)
                )
            ).all()
        )
        above = {p for s in scopes for p in ancestor_paths(s)} - {row.path for row in rows}
        known = {row.path: row for row in rows}
        if above:
            known.update(
                (row.path, row)
                for row in (await session.exec(select(Tenant).where(Tenant.path.in_(above)))).all()
            )
    tops = {min((s for s in scopes if dom_in(row.path, s)), key=len) for row in rows}
    return [
        TreeNode(
            row,
            effective([known[p] for p in ancestor_paths(row.path) if p in known]),
            row.path.count("/") - min(t.count("/") for t in tops if dom_in(row.path, t)),
        )
        for row in rows
    ]
