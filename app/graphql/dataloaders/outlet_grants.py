"""An outlet's own grants the caller may read, batched by outlet id: a page of outlets costs one query."""

from __future__ import annotations

from typing import Any

from strawberry.dataloader import DataLoader

from app.graphql.dataloaders.registry import request_loader
from app.ops.outlets.views import grants_for
from app.store.tables import Grant


def outlet_grants_loader(context: Any) -> DataLoader[str, list[tuple[Grant, str]]]:
    async def load(outlet_ids: list[str]) -> list[list[tuple[Grant, str]]]:
        return await context.read(grants_for, outlet_ids)

    return request_loader(context, "outlet_grants", lambda: DataLoader(load_fn=load))
