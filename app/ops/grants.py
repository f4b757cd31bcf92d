"""Grant use cases: one transaction each = the grant row + its policy lines + an audit event.

Admin-plane authorization of the acting person is added in front of these by the API layer's
use cases (issue 4); the rules here hold whoever calls: a tenant grants only to outlets in its
subtree, only what the effective ceiling allows for the outlet kind, financial services only to
bank outlets, within a window that ends after it starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.projection import grant_line, suspension_line
from app.domain.catalogue import FINANCIAL_SERVICES, OutletKind, parse_card_service, parse_outlet_kind
from app.domain.ceilings import effective_ceiling_for_grant
from app.domain.reasons import Reason
from app.domain.regions import dom_in, parse_tenant_path
from app.ops.errors import OpsError, not_found
from app.store import policy
from app.store.audit import append_event
from app.store.tables import Ceiling, Grant, Outlet, Tenant

LIVE = ("proposed", "active", "suspended")
MAX_TEXT = 512


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


async def _validate(session: AsyncSession, req: GrantRequest) -> tuple[Tenant, str]:
    """Check a grant request against the rules; returns the granting tenant and the outlet kind."""
    tenant = await tenant_by_path(session, req.tenant)
    service = parse_card_service(req.service).value
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
    if service in FINANCIAL_SERVICES and kind != OutletKind.bank_outlet:
        raise OpsError(
            "BAD_INPUT", f"{service} is a bank-side service: only bank outlets may hold it", field="service"
        )
    if req.valid_from.tzinfo is None or (req.valid_until is not None and req.valid_until.tzinfo is None):
        raise OpsError("BAD_INPUT", "validity times need a time zone", field="validFrom")
    if req.valid_until is not None and req.valid_until <= req.valid_from:
        raise OpsError("BAD_INPUT", "the validity window ends before it starts", field="validUntil")
    if not req.document_ref.strip() or len(req.document_ref) > 128:
        raise OpsError(
            "BAD_INPUT",
            "a grant needs its approving document reference (1-128 characters)",
            field="documentRef",
        )
    if req.reason is not None and len(req.reason) > MAX_TEXT:
        raise OpsError("BAD_INPUT", f"reason is longer than {MAX_TEXT} characters", field="reason")
    allowed, cut_by = effective_ceiling_for_grant(tenant.path, kind, await ceiling_table(session))
    if service not in allowed:
        setter = cut_by.get(service)
        why = f"the ceiling set by {setter}" if setter else "the default extension catalogue"
        raise OpsError(
            "CEILING_EXCEEDED",
            f"{service} for {kind} is above {why}",
            ceilingTenant=setter,
            service=service,
            outletKind=kind,
        )
    return tenant, kind


async def grant_service(
    session: AsyncSession,
    req: GrantRequest,
    *,
    actor: str,
    proposed: bool = False,
    request_id: str | None = None,
) -> Grant:
    """Create a grant, active or (two-person approval) proposed, inside the caller's transaction."""
    tenant, _ = await _validate(session, req)
    now = datetime.now(UTC)
    row = Grant(
        tenant_id=tenant.id,
        outlet_id=req.outlet_id,
        outlet_kind=req.outlet_kind,
        service=parse_card_service(req.service).value,
        valid_from=req.valid_from,
        valid_until=req.valid_until,
        document_ref=req.document_ref.strip(),
        reason=req.reason,
        state="proposed" if proposed else "active",
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await session.flush()
    if not proposed:
        await policy.add_lines(session, [grant_line(row, tenant.path)])
    await append_event(
        session,
        tenant=tenant.path,
        actor=actor,
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


async def change_state(
    session: AsyncSession,
    grant_id: int,
    new_state: str,
    *,
    actor: str,
    why: str,
    reason_code: str = Reason.SUSPENDED.value,
    request_id: str | None = None,
) -> Grant:
    """Suspend, resume or revoke: the row, its lines (allow line or suspension mark) and the audit event."""
    row = await session.get(Grant, grant_id)
    if row is None:
        raise not_found("grant", str(grant_id))
    tenant = await session.get(Tenant, row.tenant_id)
    allowed = {"suspended": ("active",), "active": ("suspended",), "revoked": LIVE}[new_state]
    if row.state not in allowed:
        raise OpsError("CONFLICT", f"grant {grant_id} is {row.state}; it cannot become {new_state}")
    before = grant_snapshot(row)
    await policy.remove_source_lines(session, source="grant", source_ids=[str(row.id)])
    row.state, row.state_reason = new_state, why
    row.version += 1
    row.updated_at = datetime.now(UTC)
    if new_state == "active":
        await policy.add_lines(session, [grant_line(row, tenant.path)])
    elif new_state == "suspended":
        await policy.add_lines(session, [suspension_line(row, tenant.path, reason_code)])
    await append_event(
        session,
        tenant=tenant.path,
        actor=actor,
        action=f"grant.{new_state}",
        target_type="grant",
        target_id=str(row.id),
        request_id=request_id,
        detail={"before": before, "after": grant_snapshot(row), "why": why},
    )
    return row
