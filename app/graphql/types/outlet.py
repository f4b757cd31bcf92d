"""GraphQL type for an outlet."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from app.graphql.dataloaders.outlet_grants import outlet_grants_loader
from app.graphql.dataloaders.outlet_keys import outlet_keys_loader
from app.graphql.dataloaders.tenants import tenant_loader
from app.graphql.types.grant import Grant, GrantState
from app.graphql.types.partner_key import PartnerKey
from app.graphql.types.tenant import Tenant
from app.ops.outlets import views as outlets
from app.ops.outlets.views import OutletView
from app.ops.partner_keys.keys import KeyView


@strawberry.type(
    description="A place or system that serves cardholders for one department: an HRSS hall, a "
    "grassroots service platform, a bank outlet, a designated hospital or pharmacy, a self-service "
    "terminal or the 12333 hotline."
)
class Outlet:
    id: str = strawberry.field(description="The outlet's code, unique in the country, e.g. gz-th-wushan.")
    tenant_path: str = strawberry.field(description="Path of the department the outlet belongs to.")
    kind: str = strawberry.field(
        description="hrss_hall, grassroots_platform, bank_outlet, designated_hospital, "
        "designated_pharmacy, self_service_terminal or hotline."
    )
    name: str = strawberry.field(description="The outlet's name as the public knows it.")
    bank_code: str | None = strawberry.field(
        description="For a bank outlet: its bank's code (CNAPS head office, e.g. 102 for ICBC)."
    )
    nbs_code: str | None = strawberry.field(
        description="For a grassroots platform: its 9-digit (township/street) or 12-digit "
        "(village/community) statistical code."
    )
    address: str | None = strawberry.field(description="Where the outlet is.")
    status: str = strawberry.field(description="open, or closed (a closed outlet serves nobody).")
    version: int = strawberry.field(
        description="Goes up by one with every change; give it back as expectedVersion when you change it."
    )
    managed_by_file: str | None = strawberry.field(
        description="The tenant file that declares this outlet (change it there, not here); empty for "
        "outlets registered through this API."
    )
    created_at: datetime = strawberry.field(description="When the outlet was registered.")
    updated_at: datetime = strawberry.field(description="When it last changed.")
    _view: strawberry.Private[OutletView]

    @classmethod
    def from_view(cls, view: OutletView) -> Outlet:
        row = view.row
        return cls(
            id=row.id,
            tenant_path=view.tenant_path,
            kind=row.kind,
            name=row.name,
            bank_code=row.bank_code,
            nbs_code=row.nbs_code,
            address=row.address,
            status=row.status,
            version=row.version,
            managed_by_file=row.managed_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
            _view=view,
        )

    @strawberry.field(
        description="The department the outlet belongs to; empty if your roles do not let you read "
        "departments (operators, approvers)."
    )
    async def tenant(self, info: strawberry.Info) -> Tenant | None:
        row = await tenant_loader(info.context).load(self.tenant_path)
        return Tenant.from_row(row) if row else None

    @strawberry.field(
        description="Grants made to this outlet by name (not those made to its whole kind), oldest "
        "first, limited to the departments whose grants you may read; `state` keeps one state only."
    )
    async def grants(
        self,
        info: strawberry.Info,
        state: Annotated[
            GrantState | None, strawberry.argument(description="Only grants in this state, e.g. active.")
        ] = None,
    ) -> list[Grant]:
        rows = await outlet_grants_loader(info.context).load(self.id)
        return [Grant.from_row(g, path) for g, path in rows if state is None or g.state == state.value]

    @strawberry.field(
        description="The API keys partner systems use to act as this outlet, newest first: prefix, status, "
        "expiry and rate limit, never the key itself. Empty (null) if your roles do not let you read "
        "this outlet's keys."
    )
    async def partner_keys(self, info: strawberry.Info) -> list[PartnerKey] | None:
        rows = await outlet_keys_loader(info.context).load((self.id, self.tenant_path))
        return (
            None if rows is None else [PartnerKey.from_view(KeyView(row, self.tenant_path)) for row in rows]
        )

    @strawberry.field(
        description="The card services this outlet may perform at `at` (default: now) for cards of its "
        "own department: from its own grants, grants to its kind, and the statutory first-use "
        "activation of hospitals and pharmacies."
    )
    def effective_services(
        self,
        info: strawberry.Info,
        at: Annotated[
            datetime | None, strawberry.argument(description="The moment asked about, with its time zone.")
        ] = None,
    ) -> list[str]:
        return outlets.effective_services(info.context.business, self._view, at)
