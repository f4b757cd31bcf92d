"""Bulk grants: one card service to many outlets, chosen by a selector or an uploaded list of ids.

All or nothing. A grant document (文号) covers a definite set of outlets, so when any selected
outlet may not get the grant (unknown, closed, outside the granting tenant, a financial service
for a non-bank outlet, above the ceiling for its kind) the whole request is refused with a summary
per problem (how many outlets, the first few ids), and the administrator narrows the selector or
fixes the list. Nothing is skipped silently.

Sized for 100,000 outlets in one transaction: the outlets are read with a few set queries, the
grants are written by `INSERT ... SELECT` from the outlet table (no per-outlet statement), their
policy lines by two executemany statements, and one audit event records the whole bulk grant with
its selection, count and grant id range. Grants are to individual outlets, so revoking or
suspending one later works as for any grant. Under two-person approval they are created
`proposed`, like any other grant, and an approver decides them together (`decide_bulk`), by the
grant id range and count the bulk grant reported.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import NamedTuple

from sqlalchemy import literal
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.projection import grant_line
from app.ops.auth import Actor, authorize
from app.ops.errors import OpsError
from app.ops.grants import changes as grants
from app.ops.grants.selection import (
    SAMPLE,
    OutletSelector,
    Selection,
    problems_of,
    refusal_of,
    selected_outlets,
    selection_of,
)
from app.ops.inputs import (
    parse_service,
    parse_tenant,
)
from app.ops.refusals import audited_use_case
from app.store import policy
from app.store.audit import append_event
from app.store.policy import ProjectedLine
from app.store.queries import effective_settings, in_subtree
from app.store.slices import SLICE, gathered, in_slices, mapped
from app.store.tables import Grant, Outlet, Tenant


@dataclass(frozen=True)
class BulkGrantRequest:
    tenant: str
    service: str
    valid_from: datetime
    document_ref: str
    valid_until: datetime | None = None
    reason: str | None = None
    selector: OutletSelector | None = None
    outlet_list: str | None = None


@dataclass(frozen=True)
class BulkGrantResult:
    count: int
    state: str
    first_grant_id: int
    last_grant_id: int
    sample_grant_ids: list[int]
    sample_outlet_ids: list[str]


class NewGrant(NamedTuple):
    """What `grant_line` reads from a grant, for rows written without ORM objects (a named tuple:
    100,000 of them are built at once)."""

    id: int
    outlet_id: str | None
    service: str
    valid_from: datetime
    valid_until: datetime | None
    outlet_kind: str | None = None


async def _insert_grants(
    session: AsyncSession,
    selection: Selection,
    tenant: str,
    kinds: list[str],
    values: dict,
) -> list[tuple[int, str]]:
    """`INSERT INTO grant ... SELECT FROM outlet` for each condition; returns (grant id, outlet id).

    The statement repeats the checked conditions (inside the tenant, open, a checked kind), so an
    outlet that changed since it was checked is left out and the count comparison notices."""
    table = Grant.__table__
    names = list(values)
    columns = [literal(values[n], table.c[n].type) for n in names]
    inserted: list[tuple[int, str]] = []
    for condition in selection.conditions:
        source = (
            select(*columns, Outlet.id)
            .select_from(Outlet)
            .join(Tenant, Tenant.id == Outlet.tenant_id)
            .where(
                condition, in_subtree(Tenant.path, tenant), Outlet.status == "open", Outlet.kind.in_(kinds)
            )
        )
        statement = (
            table.insert().from_select([*names, "outlet_id"], source).returning(table.c.id, table.c.outlet_id)
        )
        inserted += await gathered((await session.exec(statement)).partitions(SLICE))
    return inserted


@audited_use_case("grant.bulk_create")
async def bulk_grant(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    req: BulkGrantRequest,
    *,
    request_id: str | None = None,
) -> BulkGrantResult:
    tenant = parse_tenant(req.tenant)
    service = parse_service(req.service)
    await authorize(sessions, actor, "write", "grant", tenant, request_id=request_id)
    terms = grants.check_terms(service, req.valid_from, req.valid_until, req.document_ref, req.reason)
    valid_from, valid_until = terms.valid_from, terms.valid_until
    selection = selection_of(req.selector, req.outlet_list, tenant)
    async with sessions() as session, session.begin():
        tenant_row = await grants.tenant_by_path(session, tenant)
        outlets = await selected_outlets(session, selection)
        if not outlets:
            raise OpsError("BAD_INPUT", "the selection contains no outlets", field=selection.field)
        problems = await problems_of(session, tenant, service, selection, outlets)
        if problems:
            raise refusal_of(problems, selection)
        proposed = (await effective_settings(session, tenant)).two_person_approval
        now = datetime.now(UTC)
        values = {
            "tenant_id": tenant_row.id,
            "service": service,
            "valid_from": valid_from,
            "valid_until": valid_until,
            "document_ref": terms.document_ref,
            "reason": terms.reason,
            "state": "proposed" if proposed else "active",
            "proposed_by": actor.principal_id,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        kinds: Counter[str] = Counter()
        async for part in in_slices(outlets):
            kinds.update(kind for _, kind, _, _ in part)
        inserted = await _insert_grants(session, selection, tenant, sorted(kinds), values)
        if len(inserted) != len(outlets):  # an outlet changed between reading and writing
            raise OpsError(
                "CONFLICT", "the selected outlets changed while granting; nothing was granted, retry"
            )
        inserted.sort(key=itemgetter(0))  # by grant id; rows compare slowly as rows
        if not proposed:

            def line(granted: tuple[int, str]) -> ProjectedLine:
                return grant_line(NewGrant(*granted, service, valid_from, valid_until), tenant)

            await policy.add_lines(session, await mapped(line, inserted), by=actor.label)
        first, last = inserted[0][0], inserted[-1][0]
        await append_event(
            session,
            tenant=tenant,
            actor=actor.label,
            credential=actor.credential,
            action="grant.bulk_create",
            target_type="grant",
            target_id=f"{first}..{last}",
            request_id=request_id,
            detail={
                **selection.description,
                "count": len(inserted),
                "state": values["state"],
                "service": service,
                "document_ref": values["document_ref"],
                "valid_from": valid_from.isoformat(),
                "valid_until": valid_until.isoformat() if valid_until else None,
                "first_grant_id": first,
                "last_grant_id": last,
                "kinds": dict(sorted(kinds.items())),
            },
        )
    return BulkGrantResult(
        count=len(inserted),
        state=values["state"],
        first_grant_id=first,
        last_grant_id=last,
        sample_grant_ids=[gid for gid, _ in inserted[:SAMPLE]],
        sample_outlet_ids=[outlet_id for _, outlet_id in inserted[:SAMPLE]],
    )


# --- deciding a bulk proposal at once ------------------------------------------------------------
