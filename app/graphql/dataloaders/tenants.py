"""Outlets' tenants the caller may read, batched by path: a page of outlets costs one query."""

from __future__ import annotations

from typing import Any

from strawberry.dataloader import DataLoader

from app.graphql.dataloaders.registry import request_loader
from app.ops.outlets.views import tenants_for
from app.store.tables import Tenant


def tenant_loader(context: Any) -> DataLoader[str, Tenant | None]:
    async def load(paths: list[str]) -> list[Tenant | None]:
        return await context.read(tenants_for, paths)

    return request_loader(context, "tenant_by_path", lambda: DataLoader(load_fn=load))
