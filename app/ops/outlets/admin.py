"""Outlet use cases: the outlets a person may read, and creating, changing and closing one.

Each change is one transaction: the outlet row, its kind-group policy line, the grants a move or a
close ends, and an audit event with before/after. Outlets listed in the tenant files belong to the
files (DESIGN.md §4): changing them here would be undone by the next `ssc tenants apply`, so the API
refuses to (CONFLICT naming the file).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.projection import outlet_group_line
from app.domain import outlets as outlet_rules
from app.domain.catalogue import FINANCIAL_SERVICES, OutletKind
from app.domain.ceilings import effective_ceiling_for_grant
from app.domain.regions import TenantLevel
from app.ops.auth import Actor, authorize
from app.ops.errors import OpsError, check_version, not_found
from app.ops.grants.changes import ceiling_table
from app.ops.inputs import reason_text
from app.ops.outlets.closing import close_outlet_row, live_grants, revoke_grants, snapshot
from app.ops.outlets.views import OutletView, check_outlet_id, locate, reach, tenant_input_path
from app.ops.partner_keys.keys import forget_keys
from app.ops.refusals import audited_use_case
from app.store import policy
from app.store.audit import append_event
from app.store.tables import Outlet, Tenant

# Record keys (tenant files, CSV columns) whose GraphQL input field is named differently.
INPUT_FIELDS = {"bank": "bankCode", "nbs_code": "nbsCode"}
# Outlet columns behind the record keys that an update may change.
COLUMNS = {"kind": "kind", "name": "name", "bank": "bank_code", "nbs_code": "nbs_code", "address": "address"}


@dataclass(frozen=True)
class OutletChange:
    """The outlet after a change, and what the change ended."""

    outlet: OutletView
    revoked_grants: list[int] = field(default_factory=list)
    revoked_keys: list[int] = field(default_factory=list)


def _bad_input(problems: list[outlet_rules.Problem]) -> OpsError:
    """The first problem names the field; all of them travel in `problems`."""
    listed = [{"field": INPUT_FIELDS.get(p.key, p.key), "message": p.reason} for p in problems]
    return OpsError("BAD_INPUT", problems[0].reason, field=listed[0]["field"], problems=listed)


def _clean(values: dict[str, str | None]) -> dict[str, str | None]:
    cleaned, problems = {}, []
    for key, value in values.items():
        cleaned[key], problem = outlet_rules.clean_text(key, value)
        if problem is not None:
            problems.append(problem)
    if problems:
        raise _bad_input(problems)
    return cleaned


async def _tenant_row(session: AsyncSession, path: str, kind: str) -> Tenant:
    """The outlet's tenant, which must exist; a grassroots platform's must be a county, or a
    prefecture without counties (the rules alone cannot tell whether a prefecture has any)."""
    row = (await session.exec(select(Tenant).where(Tenant.path == path))).first()
    if row is None:
        raise OpsError("BAD_INPUT", f"there is no tenant {path}", field="tenant")
    if kind == OutletKind.grassroots_platform and row.level == TenantLevel.prefecture:
        county = (await session.exec(select(Tenant.path).where(Tenant.parent_id == row.id).limit(1))).first()
        if county is not None:
            raise OpsError(
                "BAD_INPUT",
                f"a grassroots platform belongs to its county; {path} has counties (e.g. {county})",
                field="tenant",
            )
    return row


async def _check_unique_nbs(session: AsyncSession, nbs_code: str | None, outlet_id: str) -> None:
    if nbs_code is None:
        return
    holder = (
        await session.exec(select(Outlet.id).where(Outlet.nbs_code == nbs_code, Outlet.id != outlet_id))
    ).first()
    if holder is not None:
        raise OpsError("CONFLICT", f"NBS code {nbs_code} already belongs to outlet {holder}", field="nbsCode")


@audited_use_case("outlet.create")
async def create_outlet(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    values: dict[str, str | None],
    *,
    request_id: str | None = None,
) -> OutletView:
    """A new outlet (not file-managed) with its kind-group line; `values` use the record keys."""
    values = _clean(values)
    tenant_path = tenant_input_path(values["tenant"])
    await authorize(
        sessions, actor, "write", "outlet", tenant_path, target_id=values["id"] or "", request_id=request_id
    )
    fields, problems = outlet_rules.check_record(values)
    if fields is None:
        raise _bad_input(problems)
    try:
        async with sessions() as session, session.begin():
            tenant = await _tenant_row(session, tenant_path, fields.kind)
            if await session.get(Outlet, fields.id) is not None:
                raise OpsError("CONFLICT", f"an outlet {fields.id} already exists", field="id")
            await _check_unique_nbs(session, fields.nbs_code, fields.id)
            now = datetime.now(UTC)
            row = Outlet(
                id=fields.id,
                tenant_id=tenant.id,
                kind=fields.kind,
                name=fields.name,
                bank_code=fields.bank_code,
                nbs_code=fields.nbs_code,
                address=fields.address,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            await session.flush()
            await policy.add_lines(
                session, [outlet_group_line(row.id, row.kind, tenant_path)], by=actor.label
            )
            await append_event(
                session,
                tenant=tenant_path,
                actor=actor.label,
                credential=actor.credential,
                action="outlet.create",
                target_type="outlet",
                target_id=row.id,
                request_id=request_id,
                detail={"after": snapshot(row, tenant_path)},
            )
    except IntegrityError:
        # Someone created the same id or NBS code between our check and our commit.
        raise OpsError("CONFLICT", f"outlet {fields.id} or its NBS code was just taken", field="id") from None
    return OutletView(row, tenant_path)


async def _writable(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, outlet_id: str, request_id: str | None
) -> OutletView:
    check_outlet_id(outlet_id)
    located = await reach(sessions, actor, "write", outlet_id, await locate(sessions, outlet_id), request_id)
    if located is None:
        raise not_found("outlet", outlet_id)
    return located


async def _locked(session: AsyncSession, located: OutletView, expected_version: int) -> tuple[Outlet, str]:
    """The outlet row, locked for this transaction, if it is still the one the caller saw."""
    row = (await session.exec(select(Outlet).where(Outlet.id == located.row.id).with_for_update())).first()
    if row is None or row.tenant_id != located.row.tenant_id:
        raise OpsError("CONFLICT", f"outlet {located.row.id} changed meanwhile; read it again")
    check_version(f"outlet {row.id}", row.version, expected_version)
    if row.managed_by:
        raise OpsError(
            "CONFLICT",
            f"outlet {row.id} is declared in the tenant file {row.managed_by}: change it there and run "
            "`ssc tenants apply`",
            managedBy=row.managed_by,
        )
    if row.status != "open":
        raise OpsError("CONFLICT", f"outlet {row.id} is closed")
    return row, located.tenant_path


async def _unfit_for_kind(session: AsyncSession, outlet_id: str, kind: str) -> list[int]:
    """Live grants of the outlet that an outlet of `kind` may not hold (bank-side services, ceilings)."""
    table = await ceiling_table(session)
    unfit = []
    for grant, path in await live_grants(session, outlet_id):
        allowed, _ = effective_ceiling_for_grant(path, kind, table)
        bank_side = grant.service in FINANCIAL_SERVICES and kind != OutletKind.bank_outlet
        if bank_side or grant.service not in allowed:
            unfit.append(grant.id)
    return unfit


@audited_use_case("outlet.update")
async def update_outlet(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    outlet_id: str,
    expected_version: int,
    changes: dict[str, str | None],
    *,
    request_id: str | None = None,
) -> OutletChange:
    """Change the given fields (record keys; None clears an optional one). A move to another tenant
    revokes the outlet's own grants; a new kind revokes those the kind may not hold. Both rewrite
    the kind-group line."""
    located = await _writable(sessions, actor, outlet_id, request_id)
    changes = _clean(changes)
    new_path = located.tenant_path
    if "tenant" in changes:
        new_path = tenant_input_path(changes["tenant"])
        if new_path != located.tenant_path:
            await authorize(
                sessions, actor, "write", "outlet", new_path, target_id=outlet_id, request_id=request_id
            )
    async with sessions() as session, session.begin():
        row, old_path = await _locked(session, located, expected_version)
        current = {key: getattr(row, column) for key, column in COLUMNS.items()}
        wanted = {**current, **changes, "id": row.id, "tenant": new_path}
        fields, problems = outlet_rules.check_record(wanted)
        if fields is None:
            raise _bad_input(problems)
        moved, new_kind = new_path != old_path, fields.kind != row.kind
        if not moved and all(wanted[key] == value for key, value in current.items()):
            return OutletChange(OutletView(row, old_path))
        tenant = await _tenant_row(session, new_path, fields.kind)
        await _check_unique_nbs(session, fields.nbs_code, row.id)
        before = snapshot(row, old_path)
        revoked: list[int] = []
        if moved:
            live = [g.id for g, _ in await live_grants(session, row.id)]
            why = f"outlet moved from {old_path} to {new_path}"
            revoked = await revoke_grants(
                session, live, why, actor=actor.label, credential=actor.credential, request_id=request_id
            )
        elif new_kind:
            unfit = await _unfit_for_kind(session, row.id, fields.kind)
            why = f"outlet kind changed from {row.kind} to {fields.kind}"
            revoked = await revoke_grants(
                session, unfit, why, actor=actor.label, credential=actor.credential, request_id=request_id
            )
        if moved or new_kind:
            await policy.remove_source_lines(session, source="outlet", source_ids=[row.id], by=actor.label)
            await policy.add_lines(
                session, [outlet_group_line(row.id, fields.kind, new_path)], by=actor.label
            )
        for key, column in COLUMNS.items():
            setattr(row, column, wanted[key])
        row.tenant_id = tenant.id
        row.version += 1
        row.updated_at = datetime.now(UTC)
        detail = {"before": before, "after": snapshot(row, new_path), "revoked_grants": revoked}
        # A move is recorded in both tenants' chains, so each side's auditors see it.
        for chain in dict.fromkeys((new_path, old_path)):
            await append_event(
                session,
                tenant=chain,
                actor=actor.label,
                credential=actor.credential,
                action="outlet.update",
                target_type="outlet",
                target_id=row.id,
                request_id=request_id,
                detail=detail,
            )
    return OutletChange(OutletView(row, new_path), revoked)


@audited_use_case("outlet.close")
async def close_outlet(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    outlet_id: str,
    reason: str,
    expected_version: int,
    *,
    request_id: str | None = None,
) -> OutletChange:
    """Close an outlet for good: its grants are revoked, its partner keys too, its kind-group line goes."""
    reason = reason_text(reason)
    located = await _writable(sessions, actor, outlet_id, request_id)
    async with sessions() as session, session.begin():
        row, path = await _locked(session, located, expected_version)
        closed = await close_outlet_row(
            session, row, path, reason, actor=actor.label, credential=actor.credential, request_id=request_id
        )
    # This worker stops trusting the keys now; the others within their key cache time (1 s).
    forget_keys(set(closed.revoked_keys))
    return OutletChange(OutletView(row, path), closed.revoked_grants, closed.revoked_keys)
