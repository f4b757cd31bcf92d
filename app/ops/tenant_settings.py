"""Tenant settings and their inheritance: a tenant's own value, else its nearest ancestor's."""

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


async def effective_settings(session: AsyncSession, tenant_path: str) -> EffectiveSettings:
    chain = ancestor_paths(tenant_path)
    rows = {t.path: t for t in (await session.exec(select(Tenant).where(Tenant.path.in_(chain)))).all()}
    approval, approval_from = DEFAULT_TWO_PERSON_APPROVAL, None
    threshold, threshold_from = DEFAULT_PIN_LOCK_THRESHOLD, None
    for path in reversed(chain):  # nearest first
        row = rows.get(path)
        if row is None:
            continue
        if approval_from is None and row.two_person_approval is not None:
            approval, approval_from = row.two_person_approval, path
        if threshold_from is None and row.pin_lock_threshold is not None:
            threshold, threshold_from = row.pin_lock_threshold, path
    return EffectiveSettings(approval, approval_from, threshold, threshold_from)
