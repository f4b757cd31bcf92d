"""Mutations on tenants: their settings. Each is one use case in app/ops."""

from __future__ import annotations

import strawberry

from app.graphql.types.tenant import Tenant
from app.ops.tenants import admin as settings_admin


@strawberry.input(
    description="Change a department's own settings. Leave a setting out to keep it; clear it to follow "
    "the department above again."
)
class UpdateTenantSettingsInput:
    tenant: str = strawberry.field(description="The department's path, e.g. cn/440000/440100.")
    expected_version: int = strawberry.field(
        description="The department's version you saw; refused if it changed since."
    )
    two_person_approval: bool | None = strawberry.field(
        default=None, description="Whether grants here need a second person's approval."
    )
    pin_lock_threshold: int | None = strawberry.field(
        default=None, description="Wrong PIN entries before a card's PIN locks, 1-10."
    )
    clear_two_person_approval: bool = strawberry.field(
        default=False, description="Drop this department's own value and follow the department above."
    )
    clear_pin_lock_threshold: bool = strawberry.field(
        default=False, description="Drop this department's own value and follow the department above."
    )


@strawberry.type(description="The department after the change.")
class UpdateTenantSettingsPayload:
    tenant: Tenant = strawberry.field(description="The department, with its own and its effective settings.")


@strawberry.type
class TenantMutations:
    @strawberry.mutation(
        description="Set or clear a department's own two-person approval and PIN lock threshold; "
        "departments below that do not set their own follow it."
    )
    async def update_tenant_settings(
        self, info: strawberry.Info, input: UpdateTenantSettingsInput
    ) -> UpdateTenantSettingsPayload:
        row = await info.context.run(
            settings_admin.update_tenant_settings,
            tenant=input.tenant,
            expected_version=input.expected_version,
            two_person_approval=input.two_person_approval,
            pin_lock_threshold=input.pin_lock_threshold,
            clear_two_person_approval=input.clear_two_person_approval,
            clear_pin_lock_threshold=input.clear_pin_lock_threshold,
        )
        return UpdateTenantSettingsPayload(tenant=Tenant.from_row(row))
