"""Before a bulk grant: how many outlets the selector (or the list) chooses, of which kinds, and
every reason some of them could not get the card service, without granting anything. The console
shows it beside the bulk grant form; the grant itself checks everything again."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from app.ops.auth import Actor, authorize
from app.ops.grants.selection import (
    SAMPLE,
    OutletSelector,
    Problem,
    problems_of,
    selected_outlets,
    selection_of,
)
from app.ops.inputs import parse_service, parse_tenant


@dataclass(frozen=True)
class BulkPreview:
    count: int
    kinds: Counter  # outlet kind -> how many selected
    sample: list[str]  # the first outlet ids, in code order
    problems: list[Problem]  # empty: the bulk grant would be made


async def preview_bulk_grant(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    tenant: str,
    service: str,
    selector: OutletSelector | None,
    outlet_list: str | None,
    *,
    request_id: str | None = None,
) -> BulkPreview:
    """For whoever may make the grant (`write` on grant in `tenant`)."""
    tenant = parse_tenant(tenant)
    service = parse_service(service)
    await authorize(sessions, actor, "write", "grant", tenant, request_id=request_id)
    selection = selection_of(selector, outlet_list, tenant)
    async with sessions() as session:
        outlets = await selected_outlets(session, selection)
        problems = await problems_of(session, tenant, service, selection, outlets)
    ids = sorted(outlet_id for outlet_id, *_ in outlets)
    return BulkPreview(len(outlets), Counter(kind for _, kind, _, _ in outlets), ids[:SAMPLE], problems)
