"""GraphQL type for a tenant (an HRSS department)."""

from __future__ import annotations

import asyncio

import strawberry

from app.domain.settings import EffectiveSettings
from app.ops.tenants.settings import settings_in_force
from app.store.tables import Tenant as TenantRow


@strawberry.type(description="An HRSS department: national, province, prefecture (city) or county level.")
class Tenant:
    path: str = strawberry.field(
        description="The department's place in the tree as GB/T 2260 codes, "
        "e.g. cn/440000/440100 for Guangzhou."
    )
    code: str = strawberry.field(description="Its own region code (the last segment of the path), or cn.")
    name: str = strawberry.field(description="The department's official name.")
    level: str = strawberry.field(description="national, province, prefecture or county.")
    parent_path: str | None = strawberry.field(description="Path of the department above it; empty for cn.")
    two_person_approval: bool | None = strawberry.field(
        description="Whether grants here need a second person's approval, when this department sets it "
        "itself; empty means it follows the department above."
    )
    pin_lock_threshold: int | None = strawberry.field(
        description="Wrong PIN entries before a card's PIN locks, when set here; empty means inherited."
    )
    version: int = strawberry.field(
        description="Goes up by one with every change; give it back as expectedVersion when you change it."
    )
    # The four effective-setting fields share one lookup of the ancestry per department.
    _effective: strawberry.Private[asyncio.Future[EffectiveSettings] | None] = None

    @classmethod
    def from_row(cls, row: TenantRow) -> Tenant:
        parent = row.path.rsplit("/", 1)[0] if "/" in row.path else None
        return cls(
            path=row.path,
            code=row.code,
            name=row.name,
            level=row.level,
            parent_path=parent,
            two_person_approval=row.two_person_approval,
            pin_lock_threshold=row.pin_lock_threshold,
            version=row.version,
        )

    async def _settings(self, info: strawberry.Info) -> EffectiveSettings:
        if self._effective is None:
            self._effective = asyncio.ensure_future(info.context.read(settings_in_force, self.path))
        return await self._effective

    @strawberry.field(
        description="Whether grants here need a second person's approval: this department's own value, "
        "else the nearest department above that sets it, else no."
    )
    async def effective_two_person_approval(self, info: strawberry.Info) -> bool:
        return (await self._settings(info)).two_person_approval

    @strawberry.field(
        description="The department whose value effectiveTwoPersonApproval comes from; empty means "
        "nobody above sets it and the platform default applies."
    )
    async def effective_two_person_approval_from(self, info: strawberry.Info) -> str | None:
        return (await self._settings(info)).two_person_approval_from

    @strawberry.field(
        description="Wrong PIN entries before a card's PIN locks: this department's own value, else the "
        "nearest department above that sets it, else the platform default."
    )
    async def effective_pin_lock_threshold(self, info: strawberry.Info) -> int:
        return (await self._settings(info)).pin_lock_threshold

    @strawberry.field(
        description="The department whose value effectivePinLockThreshold comes from; empty means the "
        "platform default applies."
    )
    async def effective_pin_lock_threshold_from(self, info: strawberry.Info) -> str | None:
        return (await self._settings(info)).pin_lock_threshold_from
