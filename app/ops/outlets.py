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
from sqlmodel import func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.policy_state import BUILTIN_PREFIX, BusinessPolicy
from app.authz.projection import outlet_group_line, outlet_subject, policy_time
from app.domain.catalogue import FINANCIAL_SERVICES, OutletKind, parse_outlet_kind
from app.domain.ceilings import effective_ceiling_for_grant, statutory_allowed
from app.domain.errors import DomainError
from app.domain.regions import ROOT, TenantLevel, parse_tenant_path
from app.ops import outlet_rules
from app.ops.auth import Actor, authorize, deny
from app.ops.errors import OpsError, not_found, version_conflict
from app.ops.grants import LIVE, ceiling_table, change_state
from app.ops.inputs import MAX_REASON, reason_text
from app.ops.partner_keys import forget_keys
from app.ops.refusals import audited_use_case
from app.ops.tenant_queries import in_subtree
from app.store import policy
from app.store.audit import append_event
from app.store.tables import Grant, Outlet, PartnerKey, Tenant

STATUSES = ("open", "closed")
MAX_SEARCH = 64
# Record keys (tenant files, CSV columns) whose GraphQL input field is named differently.
INPUT_FIELDS = {"bank": "bankCode", "nbs_code": "nbsCode"}
# Outlet columns behind the record keys that an update may change.
COLUMNS = {"kind": "kind", "name": "name", "bank": "bank_code", "nbs_code": "nbs_code", "address": "address"}


@dataclass(frozen=True)
class OutletView:
    """An outlet row with the path of its tenant (what every reader of an outlet needs)."""

    row: Outlet
    tenant_path: str


@dataclass(frozen=True)
class OutletFilter:
    tenant: str | None = None
    descendants: bool = True
    kind: str | None = None
    bank: str | None = None
    status: str | None = None
    search: str | None = None


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


def _check_id(outlet_id: str) -> None:
    if not 1 <= len(outlet_id) <= outlet_rules.LIMITS["id"]:
        raise OpsError("BAD_INPUT", "an outlet id has 1-64 characters", field="id")


def snapshot(row: Outlet, tenant_path: str) -> dict:
    return {
        "tenant": tenant_path,
        "kind": row.kind,
        "name": row.name,
        "bank_code": row.bank_code,
        "nbs_code": row.nbs_code,
        "address": row.address,
        "status": row.status,
        "version": row.version,
    }


# --- reads ----------------------------------------------------------------------------------------


def _conditions(flt: OutletFilter) -> list:
    conditions = []
    if flt.kind is not None:
        conditions.append(Outlet.kind == parse_outlet_kind(flt.kind).value)
    if flt.bank is not None:
        if not outlet_rules.BANK_CODE.fullmatch(flt.bank):
            raise OpsError("BAD_INPUT", "bank code is 3-16 of 0-9, A-Z", field="bank")
        conditions.append(Outlet.bank_code == flt.bank)
    if flt.status is not None:
        if flt.status not in STATUSES:
            raise OpsError("BAD_INPUT", "status is open or closed", field="status")
        conditions.append(Outlet.status == flt.status)
    if flt.search is not None:
        if not 1 <= len(flt.search) <= MAX_SEARCH:
            raise OpsError("BAD_INPUT", f"search text has 1-{MAX_SEARCH} characters", field="search")
        # The text is matched literally: escape LIKE's wildcards and the escape character itself.
        text = flt.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(
            or_(Outlet.name.ilike(f"%{text}%", escape="\\"), Outlet.id.ilike(f"%{text}%", escape="\\"))
        )
    return conditions


async def list_outlets(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    flt: OutletFilter,
    *,
    after: str | None,
    limit: int,
    request_id: str | None = None,
) -> tuple[list[OutletView], int]:
    """Outlets in `flt.tenant` (its subtree unless `descendants` is off; default: everything the
    caller may read), matching the filters, keyset-paged by outlet id."""
    if flt.tenant is not None:
        tenant = tenant_input_path(flt.tenant)
        await authorize(sessions, actor, "read", "outlet", tenant, request_id=request_id)
        scopes = [tenant]
    else:
        scopes = [s for s in actor.guard.scopes() if actor.guard.can("read", "outlet", s)]
    conditions = _conditions(flt)
    if not scopes:
        return [], 0
    if flt.descendants:
        conditions.append(or_(*(in_subtree(Tenant.path, s) for s in scopes)))
    else:
        conditions.append(Tenant.path.in_(scopes))
    async with sessions() as session:
        total = (
            await session.exec(
                select(func.count())
                .select_from(Outlet)
                .join(Tenant, Tenant.id == Outlet.tenant_id)
                .where(*conditions)
            )
        ).one()
        query = (
            select(Outlet, Tenant.path)
            .join(Tenant, Tenant.id == Outlet.tenant_id)
            .where(*conditions)
            .order_by(Outlet.id)
            .limit(limit + 1)
        )
        if after is not None:
            query = query.where(Outlet.id > after)
        rows = (await session.exec(query)).all()
    return [OutletView(row, path) for row, path in rows], total


async def _locate(sessions: async_sessionmaker[AsyncSession], outlet_id: str) -> OutletView | None:
    async with sessions() as session:
        found = (
            await session.exec(
                select(Outlet, Tenant.path)
                .join(Tenant, Tenant.id == Outlet.tenant_id)
                .where(Outlet.id == outlet_id)
            )
        ).first()
    return OutletView(*found) if found else None


async def _reach(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    act: str,
    outlet_id: str,
    found: OutletView | None,
    request_id: str | None,
) -> OutletView | None:
    """FORBIDDEN outside the caller's reach whether or not the outlet exists (DESIGN.md §7); only
    someone whose reach is the whole country learns that an outlet does not exist (None)."""
    path = found.tenant_path if found else ROOT
    if actor.guard.can(act, "outlet", path):
        return found
    why = f"no role allows {act} on outlet in {path}" if found else f"outlet {outlet_id} does not exist"
    raise await deny(
        sessions,
        actor,
        f"outlet.{act}",
        "outlet",
        outlet_id,
        path,
        request_id=request_id,
        why=why,
        message=f"not allowed to {act} outlet {outlet_id}",
    )


async def get_outlet(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, outlet_id: str, *, request_id: str | None = None
) -> OutletView | None:
    _check_id(outlet_id)
    return await _reach(sessions, actor, "read", outlet_id, await _locate(sessions, outlet_id), request_id)


async def tenants_by_path(
    sessions: async_sessionmaker[AsyncSession], paths: list[str]
) -> list[Tenant | None]:
    """One query for a batch of outlets' tenants (a DataLoader's batch), in the order asked."""
    async with sessions() as session:
        found = {t.path: t for t in (await session.exec(select(Tenant).where(Tenant.path.in_(paths)))).all()}
    return [found.get(path) for path in paths]


def readable_tenant(actor: Actor, tenant: Tenant | None) -> Tenant | None:
    """An outlet's tenant, for those who may read departments there (operators and approvers may not)."""
    return tenant if tenant is not None and actor.guard.can("read", "tenant", tenant.path) else None


async def grants_by_outlet(
    sessions: async_sessionmaker[AsyncSession], outlet_ids: list[str]
) -> list[list[tuple[Grant, str]]]:
    """One query for a batch of outlets' own grants, each with the granting tenant's path."""
    async with sessions() as session:
        rows = (
            await session.exec(
                select(Grant, Tenant.path)
                .join(Tenant, Tenant.id == Grant.tenant_id)
                .where(Grant.outlet_id.in_(outlet_ids))
                .order_by(Grant.id)
            )
        ).all()
    found: dict[str, list[tuple[Grant, str]]] = {outlet_id: [] for outlet_id in outlet_ids}
    for grant, path in rows:
        found[grant.outlet_id].append((grant, path))
    return [found[outlet_id] for outlet_id in outlet_ids]


def readable_grants(
    actor: Actor, grants: list[tuple[Grant, str]], state: str | None
) -> list[tuple[Grant, str]]:
    """An outlet's grants (with the granting tenant's path) that the caller may read, in one state."""
    return [
        (grant, path)
        for grant, path in grants
        if (state is None or grant.state == state) and actor.guard.can("read", "grant", path)
    ]


def effective_services(business: BusinessPolicy, view: OutletView, at: datetime | None) -> list[str]:
    """Card services the outlet may perform at `at` on cards of its own tenant: its grants, its
    kind's grants and the statutory lines, less statutory lines a ceiling on its path excludes."""
    if at is not None and at.tzinfo is None:
        raise OpsError("BAD_INPUT", "give the time with its time zone", field="at")
    if view.row.status != "open":
        return []
    moment = policy_time(at or datetime.now(UTC))
    subject, tenant, kind = outlet_subject(view.row.id), view.tenant_path, view.row.kind
    found = []
    for service in sorted(business.enforcer.services_for(subject, tenant, tenant, moment)):
        lines = business.enforcer.explain(subject, tenant, tenant, service, moment).allow
        if any(
            not line[-1].startswith(BUILTIN_PREFIX)
            or statutory_allowed(tenant, kind, service, business.ceilings)
            for line in lines
        ):
            found.append(service)
    return found


# --- changes --------------------------------------------------------------------------------------


def _clean(values: dict[str, str | None]) -> dict[str, str | None]:
    cleaned, problems = {}, []
    for key, value in values.items():
        cleaned[key], problem = outlet_rules.clean_text(key, value)
        if problem is not None:
            problems.append(problem)
    if problems:
        raise _bad_input(problems)
    return cleaned


def tenant_input_path(value: str | None) -> str:
    try:
        return parse_tenant_path(value or "").path
    except DomainError as err:
        raise OpsError("BAD_INPUT", err.message, field="tenant", reason=err.code) from None


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
            await policy.add_lines(session, [outlet_group_line(row.id, row.kind, tenant_path)])
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
    _check_id(outlet_id)
    located = await _reach(
        sessions, actor, "write", outlet_id, await _locate(sessions, outlet_id), request_id
    )
    if located is None:
        raise not_found("outlet", outlet_id)
    return located


async def _locked(session: AsyncSession, located: OutletView, expected_version: int) -> tuple[Outlet, str]:
    """The outlet row, locked for this transaction, if it is still the one the caller saw."""
    row = (await session.exec(select(Outlet).where(Outlet.id == located.row.id).with_for_update())).first()
    if row is None or row.tenant_id != located.row.tenant_id:
        raise OpsError("CONFLICT", f"outlet {located.row.id} changed meanwhile; read it again")
    if row.version != expected_version:
        raise version_conflict(f"outlet {row.id}", row.version, expected_version)
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


async def _revoke(
    session: AsyncSession, grant_ids: list[int], why: str, actor: Actor, request_id: str | None
) -> list[int]:
    for grant_id in grant_ids:
        await change_state(
            session,
            grant_id,
            "revoked",
            actor=actor.label,
            credential=actor.credential,
            why=why,
            request_id=request_id,
        )
    return grant_ids


async def _live_grants(session: AsyncSession, outlet_id: str) -> list[tuple[Grant, str]]:
    return list(
        (
            await session.exec(
                select(Grant, Tenant.path)
                .join(Tenant, Tenant.id == Grant.tenant_id)
                .where(Grant.outlet_id == outlet_id, Grant.state.in_(LIVE))
                .order_by(Grant.id)
            )
        ).all()
    )


async def _unfit_for_kind(session: AsyncSession, outlet_id: str, kind: str) -> list[int]:
    """Live grants of the outlet that an outlet of `kind` may not hold (bank-side services, ceilings)."""
    table = await ceiling_table(session)
    unfit = []
    for grant, path in await _live_grants(session, outlet_id):
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
            live = [g.id for g, _ in await _live_grants(session, row.id)]
            why = f"outlet moved from {old_path} to {new_path}"
            revoked = await _revoke(session, live, why, actor, request_id)
        elif new_kind:
            unfit = await _unfit_for_kind(session, row.id, fields.kind)
            why = f"outlet kind changed from {row.kind} to {fields.kind}"
            revoked = await _revoke(session, unfit, why, actor, request_id)
        if moved or new_kind:
            await policy.remove_source_lines(session, source="outlet", source_ids=[row.id])
            await policy.add_lines(session, [outlet_group_line(row.id, fields.kind, new_path)])
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
        before = snapshot(row, path)
        live = [g.id for g, _ in await _live_grants(session, row.id)]
        # A grant's state reason holds MAX_REASON characters; the outlet's event keeps the whole reason.
        why = f"outlet closed: {reason}"[:MAX_REASON]
        revoked = await _revoke(session, live, why, actor, request_id)
        now = datetime.now(UTC)
        keys = (
            await session.exec(
                select(PartnerKey).where(PartnerKey.outlet_id == row.id, PartnerKey.revoked_at.is_(None))
            )
        ).all()
        for key in keys:
            key.revoked_at = now
        await policy.remove_source_lines(session, source="outlet", source_ids=[row.id])
        row.status, row.version, row.updated_at = "closed", row.version + 1, now
        await append_event(
            session,
            tenant=path,
            actor=actor.label,
            credential=actor.credential,
            action="outlet.close",
            target_type="outlet",
            target_id=row.id,
            request_id=request_id,
            detail={
                "before": before,
                "after": snapshot(row, path),
                "reason": reason,
                "revoked_grants": revoked,
                "revoked_keys": [k.id for k in keys],
            },
        )
    # This worker stops trusting the keys now; the others within their key cache time (1 s).
    forget_keys({k.id for k in keys})
    return OutletChange(OutletView(row, path), revoked, [k.id for k in keys])
