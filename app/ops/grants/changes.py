"""Grant use cases: one transaction each = the grant row + its policy lines + an audit event.

Admin-plane authorization of the acting person is added in front of these by the API layer's
use cases (app/ops/grants/admin.py); the rules here hold whoever calls: a tenant grants only to
outlets in its subtree, only what the effective ceiling allows for the outlet kind, financial
services only to bank outlets, within a window that ends after it starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.projection import grant_line, policy_time, suspension_line, window_end, window_start
from app.domain.catalogue import FINANCIAL_SERVICES, OutletKind, parse_card_service, parse_outlet_kind
from app.domain.ceilings import effective_ceiling_for_grant
from app.domain.reasons import Reason
from app.domain.regions import dom_in, parse_tenant_path
from app.ops.errors import OpsError, not_found
from app.ops.inputs import display_text, reason_text
from app.store import policy
from app.store.audit import append_event
from app.store.tables import Ceiling, Grant, Outlet, Tenant

LIVE = ("proposed", "active", "suspended")
MAX_DOCUMENT_REF = 128
BULK_CHUNK = 10_000  # ids per IN list: below SQLite's and PostgreSQL's bound-parameter limits

# Which states each change may start from. Approval (proposed -> active) is not here: it goes
# through `decide_proposal`, so resuming can never activate a grant nobody approved.
_FROM_STATES = {"suspended": ("active",), "active": ("suspended",), "revoked": LIVE}


@dataclass(frozen=True)
class GrantRequest:
    tenant: str
    service: str
    valid_from: datetime
    document_ref: str
    outlet_id: str | None = None
    outlet_kind: str | None = None
    valid_until: datetime | None = None
    reason: str | None = None


async def ceiling_table(session: AsyncSession) -> dict[tuple[str, str], frozenset[str]]:
    rows = (
        await session.exec(
            select(Tenant.path, Ceiling.outlet_kind, Ceiling.services).join(
                Tenant, Tenant.id == Ceiling.tenant_id
            )
        )
    ).all()
    return {(path, kind): frozenset(services.split()) for path, kind, services in rows}


async def tenant_by_path(session: AsyncSession, path: str) -> Tenant:
    parsed = parse_tenant_path(path)
    tenant = (await session.exec(select(Tenant).where(Tenant.path == parsed.path))).first()
    if tenant is None:
        raise not_found("tenant", parsed.path)
    return tenant


class Terms(NamedTuple):
    """A grant's terms as checked: the validity window is rounded inward to whole seconds (what the
    policy enforces, and what the grant records, so that a reviewer sees the window in force)."""

    service: str
    valid_from: datetime
    valid_until: datetime | None
    document_ref: str
    reason: str | None


def check_terms(
    service: str,
    valid_from: datetime,
    valid_until: datetime | None,
    document_ref: str,
    reason: str | None,
) -> Terms:
    """The parts of a grant that do not depend on its target."""
    service = parse_card_service(service).value
    if valid_from.tzinfo is None:
        raise OpsError("BAD_INPUT", "validity times need a time zone", field="validFrom")
    if valid_until is not None and valid_until.tzinfo is None:
        raise OpsError("BAD_INPUT", "validity times need a time zone", field="validUntil")
    start, end = window_start(valid_from), window_end(valid_until)
    if end is not None and end <= start:
        raise OpsError(
            "BAD_INPUT",
            "the validity window ends before it starts (or within its first second)",
            field="validUntil",
        )
    try:
        policy_time(start), policy_time(end)
    except (ValueError, OverflowError):
        raise OpsError(
            "BAD_INPUT", "the validity window lies outside years 1000-9999", field="validFrom"
        ) from None
    document_ref = display_text(document_ref, "documentRef", MAX_DOCUMENT_REF)
    if reason is not None:
        reason = reason_text(reason)
    return Terms(service, start, end, document_ref, reason)


def check_service_fits_kind(service: str, kind: str) -> None:
    if service in FINANCIAL_SERVICES and kind != OutletKind.bank_outlet:
        raise OpsError(
            "BAD_INPUT", f"{service} is a bank-side service: only bank outlets may hold it", field="service"
        )


def ceiling_refusal(
    tenant_path: str, kind: str, service: str, table: dict[tuple[str, str], frozenset[str]]
) -> OpsError | None:
    """CEILING_EXCEEDED naming the tenant whose ceiling `service` for `kind` exceeds, or None if it fits."""
    allowed, cut_by = effective_ceiling_for_grant(tenant_path, kind, table)
    if service in allowed:
        return None
    setter = cut_by.get(service)
    why = f"the ceiling set by {setter}" if setter else "the default extension catalogue"
    return OpsError(
        "CEILING_EXCEEDED",
        f"{service} for {kind} is above {why}",
        ceilingTenant=setter,
        service=service,
        outletKind=kind,
    )


async def check_ceiling(session: AsyncSession, tenant_path: str, kind: str, service: str) -> None:
    refusal = ceiling_refusal(tenant_path, kind, service, await ceiling_table(session))
    if refusal is not None:
        raise refusal


async def _validate(session: AsyncSession, req: GrantRequest) -> tuple[Tenant, str, Terms]:
    """Check a grant request against the rules; returns the granting tenant, the outlet kind and the
    checked terms."""
    tenant = await tenant_by_path(session, req.tenant)
    terms = check_terms(req.service, req.valid_from, req.valid_until, req.document_ref, req.reason)
    service = terms.service
    if (req.outlet_id is None) == (req.outlet_kind is None):
        raise OpsError(
            "BAD_INPUT", "grant to one outlet or to one outlet kind, not both or neither", field="outlet"
        )
    if req.outlet_id is not None:
        outlet = await session.get(Outlet, req.outlet_id)
        if outlet is None or outlet.status != "open":
            raise OpsError("BAD_INPUT", f"no open outlet {req.outlet_id}", field="outletId")
        outlet_tenant = await session.get(Tenant, outlet.tenant_id)
        if not dom_in(outlet_tenant.path, tenant.path):
            raise OpsError(
                "BAD_INPUT",
                f"outlet {outlet.id} is outside tenant {tenant.path}",
                field="outletId",
                reason=Reason.OUTSIDE_TENANT.value,
            )
        kind = outlet.kind
    else:
        kind = parse_outlet_kind(req.outlet_kind).value
    check_service_fits_kind(service, kind)
    await check_ceiling(session, tenant.path, kind, service)
    return tenant, kind, terms


async def grant_service(
    session: AsyncSession,
    req: GrantRequest,
    *,
    actor: str,
    credential: str | None = None,
    proposed: bool = False,
    proposed_by: int | None = None,
    request_id: str | None = None,
) -> Grant:
    """Create a grant, active or (two-person approval) proposed, inside the caller's transaction.

    `proposed_by` is the person who created it, whether or not it needs approval.
    """
    tenant, _, terms = await _validate(session, req)
    now = datetime.now(UTC)
    row = Grant(
        tenant_id=tenant.id,
        outlet_id=req.outlet_id,
        outlet_kind=req.outlet_kind,
        service=parse_card_service(req.service).value,
        valid_from=terms.valid_from,
        valid_until=terms.valid_until,
        document_ref=terms.document_ref,
        reason=terms.reason,
        state="proposed" if proposed else "active",
        proposed_by=proposed_by,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await session.flush()
    if not proposed:
        await policy.add_lines(session, [grant_line(row, tenant.path)], by=actor)
    await append_event(
        session,
        tenant=tenant.path,
        actor=actor,
        credential=credential,
        action="grant.create",
        target_type="grant",
        target_id=str(row.id),
        request_id=request_id,
        detail={"after": grant_snapshot(row)},
    )
    return row


def grant_snapshot(row: Grant) -> dict:
    return {
        "state": row.state,
        "service": row.service,
        "outlet": row.outlet_id,
        "kind": row.outlet_kind,
        "valid_from": row.valid_from.isoformat(),
        "document_ref": row.document_ref,
        "valid_until": row.valid_until.isoformat() if row.valid_until else None,
        "reason": row.state_reason,
    }


async def target_kind(session: AsyncSession, row: Grant) -> str:
    """The outlet kind a grant's ceiling is looked up for: its own kind, or its outlet's."""
    if row.outlet_kind is not None:
        return row.outlet_kind
    outlet = await session.get(Outlet, row.outlet_id)
    return outlet.kind


async def _grant_and_tenant(session: AsyncSession, grant_id: int) -> tuple[Grant, Tenant]:
    row = await session.get(Grant, grant_id)
    if row is None:
        raise not_found("grant", str(grant_id))
    return row, await session.get(Tenant, row.tenant_id)


async def _transition(
    session: AsyncSession,
    row: Grant,
    tenant: Tenant,
    new_state: str,
    *,
    actor: str,
    credential: str | None = None,
    why: str | None,
    action: str,
    reason_code: str = Reason.SUSPENDED.value,
    request_id: str | None = None,
) -> Grant:
    """Move a grant to `new_state`: the row, its lines (allow line or suspension mark), the audit event."""
    before = grant_snapshot(row)
    await policy.remove_source_lines(session, source="grant", source_ids=[str(row.id)], by=actor)
    row.state, row.state_reason = new_state, why
    row.version += 1
    row.updated_at = datetime.now(UTC)
    if new_state == "active":
        await policy.add_lines(session, [grant_line(row, tenant.path)], by=actor)
    elif new_state == "suspended":
        await policy.add_lines(session, [suspension_line(row, tenant.path, reason_code)], by=actor)
    await append_event(
        session,
        tenant=tenant.path,
        actor=actor,
        credential=credential,
        action=action,
        target_type="grant",
        target_id=str(row.id),
        request_id=request_id,
        detail={"before": before, "after": grant_snapshot(row), "why": why},
    )
    return row


async def change_state(
    session: AsyncSession,
    grant_id: int,
    new_state: str,
    *,
    actor: str,
    credential: str | None = None,
    why: str,
    reason_code: str = Reason.SUSPENDED.value,
    request_id: str | None = None,
) -> Grant:
    """Suspend, resume or revoke. Resuming re-checks the ceiling, which may have shrunk meanwhile."""
    row, tenant = await _grant_and_tenant(session, grant_id)
    if row.state not in _FROM_STATES[new_state]:
        raise OpsError("CONFLICT", f"grant {grant_id} is {row.state}; it cannot become {new_state}")
    if new_state == "active":
        await check_ceiling(session, tenant.path, await target_kind(session, row), row.service)
    return await _transition(
        session,
        row,
        tenant,
        new_state,
        actor=actor,
        credential=credential,
        why=why,
        action=f"grant.{new_state}",
        reason_code=reason_code,
        request_id=request_id,
    )


async def decide_proposal(
    session: AsyncSession,
    grant_id: int,
    *,
    approve: bool,
    actor: str,
    credential: str | None = None,
    decided_by: int | None,
    why: str | None,
    request_id: str | None = None,
) -> Grant:
    """Approve (activate, after re-checking the ceiling) or reject a proposed grant.

    Who may decide is the caller's business (app/ops/grants/admin.py): this only applies the change.
    """
    row, tenant = await _grant_and_tenant(session, grant_id)
    if row.state != "proposed":
        raise OpsError("CONFLICT", f"grant {grant_id} is {row.state}, not proposed")
    if approve:
        await check_ceiling(session, tenant.path, await target_kind(session, row), row.service)
        row.approved_by = decided_by
    return await _transition(
        session,
        row,
        tenant,
        "active" if approve else "rejected",
        actor=actor,
        credential=credential,
        why=why,
        action="grant.approve" if approve else "grant.reject",
        request_id=request_id,
    )


async def end_above_ceiling(
    session: AsyncSession,
    found: list[tuple[Grant, str, str]],
    *,
    actor: str,
    credential: str | None = None,
    request_id: str | None = None,
) -> None:
    """Suspend the active grants and reject the proposals that a shrunk ceiling no longer covers.

    `found` holds (grant, granting tenant path, why). A ceiling can cut thousands of grants at once
    (say, after a bulk grant), so this works in bulk: chunked line removals, one insert of the
    suspension marks, and one audit event per granting tenant, action and reason, listing the
    grants (its target is the grant id, or the id range when there are several).
    """
    now = datetime.now(UTC)
    active = [str(g.id) for g, _, _ in found if g.state == "active"]
    for start in range(0, len(active), BULK_CHUNK):
        await policy.remove_source_lines(
            session, source="grant", source_ids=active[start : start + BULK_CHUNK], by=actor
        )
    marks = []
    events: dict[tuple[str, str, str], list[int]] = {}
    for grant, path, why in found:
        if grant.state == "active":
            grant.state, action = "suspended", "grant.suspended"
            marks.append(suspension_line(grant, path, Reason.ABOVE_CEILING.value))
        else:  # a proposal above the ceiling could never be approved
            grant.state, action = "rejected", "grant.reject"
        grant.state_reason = why
        grant.version += 1
        grant.updated_at = now
        events.setdefault((path, action, why), []).append(grant.id)
    await policy.add_lines(session, marks, by=actor)
    for (path, action, why), ids in events.items():
        await append_event(
            session,
            tenant=path,
            actor=actor,
            credential=credential,
            action=action,
            target_type="grant",
            target_id=str(ids[0]) if len(ids) == 1 else f"{min(ids)}..{max(ids)}",
            reason=Reason.ABOVE_CEILING.value,
            request_id=request_id,
            detail={"why": why, "count": len(ids), "grants": sorted(ids)},
        )
