"""Outlets' partner keys the caller may read, batched by (outlet id, tenant path): one query a page."""

from __future__ import annotations

from typing import Any

from strawberry.dataloader import DataLoader

from app.graphql.dataloaders.registry import request_loader
from app.ops.partner_keys.admin import keys_for
from app.store.tables import PartnerKey


def outlet_keys_loader(context: Any) -> DataLoader[tuple[str, str], list[PartnerKey] | None]:
    async def load(outlets: list[tuple[str, str]]) -> list[list[PartnerKey] | None]:
        return await context.read(keys_for, outlets)

    return request_loader(context, "outlet_keys", lambda: DataLoader(load_fn=load))
