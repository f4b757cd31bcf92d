"""GraphQL type for a tenant (an HRSS department)."""

from __future__ import annotations

import strawberry

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
        )
