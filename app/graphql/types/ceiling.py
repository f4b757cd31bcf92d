"""GraphQL types for ceilings: what a department lets the departments below it extend."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.ops.grants.ceilings import CeilingView, TenantCeilings
from app.ops.grants.ceilings import EffectiveCeiling as EffectiveCeilingView


@strawberry.type(
    description="A limit a department sets: the card services departments below it may grant to one "
    "outlet kind. It never limits the department's own grants."
)
class Ceiling:
    tenant: str = strawberry.field(description="Path of the department that set the ceiling.")
    outlet_kind: str = strawberry.field(description="The outlet kind it applies to.")
    services: list[str] = strawberry.field(description="The card services that may still be granted.")
    version: int = strawberry.field(
        description="Changes with every update; pass it as expectedVersion when changing the ceiling."
    )
    updated_at: datetime = strawberry.field(description="When the ceiling was last set.")
    set_by: str | None = strawberry.field(description="Login name of the person who last set it.")

    @classmethod
    def from_view(cls, view: CeilingView) -> Ceiling:
        return cls(
            tenant=view.tenant_path,
            outlet_kind=view.outlet_kind,
            services=view.services,
            version=view.version,
            updated_at=view.updated_at,
            set_by=view.set_by,
        )


@strawberry.type(description="A card service removed by a ceiling, and the department whose ceiling it was.")
class CeilingCut:
    service: str = strawberry.field(description="The card service that may not be granted.")
    tenant: str = strawberry.field(description="Path of the department whose ceiling removed it.")


@strawberry.type(
    description="What a department may grant to one outlet kind: the national catalogue narrowed by "
    "every ceiling set above it."
)
class EffectiveCeiling:
    outlet_kind: str = strawberry.field(description="The outlet kind.")
    services: list[str] = strawberry.field(description="The card services the department may grant to it.")
    cut_by: list[CeilingCut] = strawberry.field(
        description="Catalogue services that ceilings above the department removed, and by whom."
    )

    @classmethod
    def from_view(cls, view: EffectiveCeilingView) -> EffectiveCeiling:
        return cls(
            outlet_kind=view.outlet_kind,
            services=view.services,
            cut_by=[CeilingCut(service=s, tenant=t) for s, t in view.cut_by],
        )


@strawberry.type(description="The ceilings a department sets, and the ones that bind its own grants.")
class DepartmentCeilings:
    tenant: str = strawberry.field(description="Path of the department.")
    own: list[Ceiling] = strawberry.field(
        description="Ceilings this department set for the departments below it, by outlet kind."
    )
    effective: list[EffectiveCeiling] = strawberry.field(
        description="For each outlet kind, what this department itself may grant."
    )

    @classmethod
    def from_view(cls, view: TenantCeilings) -> DepartmentCeilings:
        return cls(
            tenant=view.tenant_path,
            own=[Ceiling.from_view(c) for c in view.own],
            effective=[EffectiveCeiling.from_view(e) for e in view.effective],
        )
