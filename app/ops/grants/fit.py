"""Before a grant is made: which card services a grant to an outlet kind in a department would be
refused, and why (the ceilings along the department's ancestry, bank-side card services). The grant
form shows it beside each card service; the grant itself is checked again when it is made."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.catalogue import CardService
from app.ops.auth import Actor, authorize
from app.ops.errors import OpsError
from app.ops.grants.changes import ceiling_refusal, ceiling_table, check_service_fits_kind
from app.ops.inputs import parse_kind, parse_tenant


def grant_refusal(
    tenant_path: str, kind: str, service: str, table: dict[tuple[str, str], frozenset[str]]
) -> OpsError | None:
    """Why a grant of `service` to `kind` by `tenant_path` would be refused whatever the outlet: a
    bank-side card service to another kind (BAD_INPUT), or a ceiling (CEILING_EXCEEDED); None if it fits."""
    try:
        check_service_fits_kind(service, kind)
    except OpsError as refusal:
        return refusal
    return ceiling_refusal(tenant_path, kind, service, table)


async def services_fit(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    tenant: str,
    kind: str,
    *,
    request_id: str | None = None,
) -> dict[str, OpsError | None]:
    """Each card service, with the refusal a grant of it to `kind` by `tenant` would meet (None: it
    fits). Needs `read` on ceiling in `tenant`."""
    tenant = parse_tenant(tenant)
    kind = parse_kind(kind)
    await authorize(sessions, actor, "read", "ceiling", tenant, request_id=request_id)
    async with sessions() as session:
        table = await ceiling_table(session)
    return {service.value: grant_refusal(tenant, kind, service.value, table) for service in CardService}
