"""Outlet mutations: register, change, close and import outlets. Each is one use case in app/ops."""

from __future__ import annotations

import strawberry

from app.graphql.types.outlet import Outlet
from app.graphql.types.revision import PolicyChange
from app.ops.outlets import admin as outlets
from app.ops.outlets import imports as outlet_import


@strawberry.input(
    description="A new outlet. Kind-specific fields: bankCode for a bank_outlet, nbsCode for a "
    "grassroots_platform (whose department must be its county)."
)
class CreateOutletInput:
    id: str = strawberry.field(
        description="A new code, unique in the country: 2-64 of a-z, 0-9, '.', '_', '-'."
    )
    tenant: str = strawberry.field(description="Path of the department the outlet belongs to.")
    kind: str = strawberry.field(
        description="hrss_hall, grassroots_platform, bank_outlet, designated_hospital, "
        "designated_pharmacy, self_service_terminal or hotline."
    )
    name: str = strawberry.field(description="The outlet's name (up to 128 characters).")
    bank_code: str | None = strawberry.field(default=None, description="A bank outlet's bank code, e.g. 102.")
    nbs_code: str | None = strawberry.field(
        default=None, description="A grassroots platform's 9- or 12-digit statistical code."
    )
    address: str | None = strawberry.field(default=None, description="Where it is (up to 255 characters).")


@strawberry.input(
    description="Changes to an outlet: leave a field out to keep it, give null to clear an optional one. "
    "Moving it to another department revokes its own grants; a new kind revokes the grants that kind "
    "may not hold."
)
class UpdateOutletInput:
    id: str = strawberry.field(description="The outlet's code (it cannot change).")
    expected_version: int = strawberry.field(description="The version you last read; a newer one is refused.")
    tenant: str | None = strawberry.field(default=strawberry.UNSET, description="Move it to this department.")
    kind: str | None = strawberry.field(default=strawberry.UNSET, description="Its new kind.")
    name: str | None = strawberry.field(default=strawberry.UNSET, description="Its new name.")
    bank_code: str | None = strawberry.field(default=strawberry.UNSET, description="Its bank code.")
    nbs_code: str | None = strawberry.field(default=strawberry.UNSET, description="Its statistical code.")
    address: str | None = strawberry.field(default=strawberry.UNSET, description="Its address.")


@strawberry.input(description="Closing an outlet for good.")
class CloseOutletInput:
    id: str = strawberry.field(description="The outlet's code.")
    reason: str = strawberry.field(
        description="Why it closes (up to 512 characters); kept in the audit trail."
    )
    expected_version: int = strawberry.field(description="The version you last read; a newer one is refused.")


@strawberry.input(description="Outlets to register from CSV text, all or none.")
class ImportOutletsInput:
    tenant: str = strawberry.field(description="Every row's department must be this one or one below it.")
    csv: str = strawberry.field(
        description="CSV text with a header row naming the columns id, tenant, kind, name and, as "
        "needed, bank, nbs_code, address; at most 10,000 rows and 2 MB. A refusal (BAD_INPUT) lists "
        "the problems in extensions.problems as row (the header is row 1), column and message."
    )


@strawberry.type(description="The registered outlet.")
class CreateOutletPayload(PolicyChange):
    outlet: Outlet = strawberry.field(description="The outlet as it now is.")


@strawberry.type(description="The changed outlet, and the grants the change ended.")
class UpdateOutletPayload(PolicyChange):
    outlet: Outlet = strawberry.field(description="The outlet as it now is.")
    revoked_grant_ids: list[int] = strawberry.field(
        description="Grants revoked because the outlet moved or can no longer hold them."
    )


@strawberry.type(description="The closed outlet, and what closing it ended.")
class CloseOutletPayload(PolicyChange):
    outlet: Outlet = strawberry.field(description="The outlet, now closed.")
    revoked_grant_ids: list[int] = strawberry.field(description="The outlet's grants, now revoked.")
    revoked_partner_key_count: int = strawberry.field(
        description="How many of the outlet's partner API keys stopped working."
    )


@strawberry.type(description="What an import registered.")
class ImportOutletsPayload(PolicyChange):
    imported: int = strawberry.field(description="How many outlets were registered.")
    outlet_ids: list[str] = strawberry.field(description="Their codes, in file order.")


def _given(data: object, names: dict[str, str]) -> dict[str, str | None]:
    """Record keys of the input fields the caller gave (null included, left-out ones not)."""
    return {
        key: getattr(data, attr) for key, attr in names.items() if getattr(data, attr) is not strawberry.UNSET
    }


_FIELDS = {
    "tenant": "tenant",
    "kind": "kind",
    "name": "name",
    "bank": "bank_code",
    "nbs_code": "nbs_code",
    "address": "address",
}


@strawberry.type
class OutletMutations:
    @strawberry.mutation(description="Register an outlet in one of your departments.")
    async def create_outlet(self, info: strawberry.Info, input: CreateOutletInput) -> CreateOutletPayload:
        view = await info.context.run(
            outlets.create_outlet,
            {"id": input.id, **_given(input, _FIELDS)},
        )
        return CreateOutletPayload(outlet=Outlet.from_view(view))

    @strawberry.mutation(description="Change an outlet's department, kind, name, codes or address.")
    async def update_outlet(self, info: strawberry.Info, input: UpdateOutletInput) -> UpdateOutletPayload:
        change = await info.context.run(
            outlets.update_outlet,
            input.id,
            input.expected_version,
            _given(input, _FIELDS),
        )
        return UpdateOutletPayload(
            outlet=Outlet.from_view(change.outlet), revoked_grant_ids=change.revoked_grants
        )

    @strawberry.mutation(
        description="Close an outlet: its grants are revoked and its partner keys stop working."
    )
    async def close_outlet(self, info: strawberry.Info, input: CloseOutletInput) -> CloseOutletPayload:
        change = await info.context.run(
            outlets.close_outlet,
            input.id,
            input.reason,
            input.expected_version,
        )
        return CloseOutletPayload(
            outlet=Outlet.from_view(change.outlet),
            revoked_grant_ids=change.revoked_grants,
            revoked_partner_key_count=len(change.revoked_keys),
        )

    @strawberry.mutation(description="Register many outlets from CSV text: all of them, or none.")
    async def import_outlets(self, info: strawberry.Info, input: ImportOutletsInput) -> ImportOutletsPayload:
        ids = await info.context.run(
            outlet_import.import_outlets,
            input.tenant,
            input.csv,
        )
        return ImportOutletsPayload(imported=len(ids), outlet_ids=ids)
