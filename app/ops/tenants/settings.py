"""Tenant settings and their inheritance.

The PIN lock threshold is the tenant's own value, else its nearest ancestor's. Two-person approval
may be tightened below, never loosened (like ceilings): it applies wherever the tenant or any
ancestor turns it on, whatever a department below says; where nobody turns it on, the nearest
explicit value (or the platform default, off) holds. So a city administrator cannot switch off the
rule a province set for them: only the province can (`loosening_refusal`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.card import DEFAULT_PIN_LOCK_THRESHOLD
from app.domain.regions import ancestor_paths
from app.store.tables import Tenant

DEFAULT_TWO_PERSON_APPROVAL = False


@dataclass(frozen=True)
class EffectiveSettings:
    two_person_approval: bool
    two_person_approval_from: str | None  # the tenant whose value applies; None = platform default
    pin_lock_threshold: int
    pin_lock_threshold_from: str | None


async def _chain(session: AsyncSession, tenant_path: str) -> list[Tenant]:
    """The tenant and its ancestors that exist, top-most first."""
    paths = ancestor_paths(tenant_path)
    rows = {t.path: t for t in (await session.exec(select(Tenant).where(Tenant.path.in_(paths)))).all()}
    return [rows[path] for path in paths if path in rows]


async def effective_settings(session: AsyncSession, tenant_path: str) -> EffectiveSettings:
    chain = await _chain(session, tenant_path)
    # Two-person approval: the top-most tenant that turns it on binds everything below it.
    required = next((row.path for row in chain if row.two_person_approval), None)
    if required is not None:
        approval, approval_from = True, required
    else:
        nearest = next((row for row in reversed(chain) if row.two_person_approval is not None), None)
        approval = DEFAULT_TWO_PERSON_APPROVAL if nearest is None else nearest.two_person_approval
        approval_from = None if nearest is None else nearest.path
    threshold, threshold_from = DEFAULT_PIN_LOCK_THRESHOLD, None
    for row in reversed(chain):  # nearest first
        if row.pin_lock_threshold is not None:
            threshold, threshold_from = row.pin_lock_threshold, row.path
            break
    return EffectiveSettings(approval, approval_from, threshold, threshold_from)


def required_above(tenant_path: str, approvals: dict[str, bool | None]) -> str | None:
    """The top-most strict ancestor of `tenant_path` that turns two-person approval on, given each
    tenant's own value by path (None: it sets nothing), or None."""
    return next((path for path in ancestor_paths(tenant_path)[:-1] if approvals.get(path)), None)


async def loosening_refusal(
    session: AsyncSession, tenant_path: str, two_person_approval: bool | None
) -> str | None:
    """Why `tenant_path` may not turn two-person approval off, or None: an ancestor requires it."""
    if two_person_approval is not False:
        return None
    chain = await _chain(session, tenant_path)
    above = required_above(tenant_path, {row.path: row.two_person_approval for row in chain})
    if above is None:
        return None
    return (
        f"{above} requires two-person approval for every department below it; a department may "
        f"tighten it, never loosen it: only {above} can turn it off"
    )
