"""An outlet's partner keys, batched by outlet id: a page of outlets costs one query for all keys."""

from __future__ import annotations

from typing import Any

from strawberry.dataloader import DataLoader

from app.graphql.dataloaders.registry import request_loader
from app.ops.partner_keys.admin import keys_by_outlet
from app.store.tables import PartnerKey


def outlet_keys_loader(context: Any) -> DataLoader[str, list[PartnerKey]]:
    async def load(outlet_ids: list[str]) -> list[list[PartnerKey]]:
        return await keys_by_outlet(context.sessions, outlet_ids)

    return request_loader(context, "outlet_keys", lambda: DataLoader(load_fn=load))
