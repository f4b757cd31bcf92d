"""Grant and ceiling use cases of the admin API: the admin-plane check, then one transaction.

Who may do what (policies/admin_roles.csv): reading grants and ceilings needs `read`; creating,
suspending, resuming and revoking grants needs `write` on grant in the grant's tenant; deciding a
proposal needs `approve` on grant there; setting a ceiling needs `write` on ceiling. When the
granting tenant's effective two-person approval is on, every new grant is a proposal, whoever
makes it.

Two-person approval is about two *people*, so an approval is refused whenever one person could
have held both credentials: the approver and the proposer are the same principal, or they are linked
through account creation. Whoever creates an account receives its first (enrolment) credential, so
an account's creator, and that creator's creator, and so on, could act as it. The approver and the
proposer are linked when one of them lies on the other's chain of creators, or when their chains
meet (they share a creator, directly or further up). Accounts made by the server bootstrap (`ssc
tokens create`) have no creator. A department therefore has its proposers and its approvers created
by different account administrators, each bootstrapped or created along separate lines
(docs/api.md, Two-person approval).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import aliased
from sqlmodel import and_, func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.catalogue import OutletKind, parse_card_service, parse_outlet_kind
from app.domain.ceilings import effective_ceiling_for_grant, parse_ceiling_services
from app.domain.errors import DomainError
from app.domain.regions import ROOT, ancestor_paths, parse_tenant_path
from app.ops import ceilings, grants
from app.ops.auth import Actor, authorize, deny, home_tenant
from app.ops.errors import OpsError, changed_meanwhile, not_found, version_conflict
from app.ops.inputs import reason_text
from app.ops.refusals import audited_use_case
from app.ops.tenant_queries import in_subtree
from app.ops.tenant_settings import effective_settings
from app.store.tables import Ceiling, Grant, Outlet, Principal, Tenant

MAX_PATH = 64
MAX_OUTLET_ID = 64
MAX_NAME = 32  # card service and outlet kind names
MAX_CEILING_SERVICES = 32
MAX_ID_DIGITS = 18
MAX_CREATOR_CHAIN = 64
GRANT_STATES = ("proposed", "active", "suspended", "revoked", "expired", "rejected")
AFFECTED_SHOWN = 100

_Proposer = aliased(Principal)
_Approver = aliased(Principal)


@dataclass(frozen=True)
class GrantView:
    """A grant with what the API shows beside it: its tenant's path and the people's names."""

    grant: Grant
    tenant_path: str
    proposed_by: str | None
    approved_by: str | None


@dataclass(frozen=True)
class GrantFilter:
    tenant: str | None = None
    outlet: str | None = None
    service: str | None = None
    state: str | None = None
    active_at: datetime | None = None


@dataclass(frozen=True)
class CeilingView:
    tenant_path: str
    outlet_kind: str
    services: list[str]
    version: int
    updated_at: datetime
    set_by: str | None


@dataclass(frozen=True)
class EffectiveCeiling:
    outlet_kind: str
    services: list[str]
    cut_by: list[tuple[str, str]]  # (card service, tenant whose ceiling removed it)


@dataclass(frozen=True)
class TenantCeilings:
    tenant_path: str
    own: list[CeilingView]
    effective: list[EffectiveCeiling]


@dataclass(frozen=True)
class CeilingChange:
    ceiling: CeilingView
    affected_count: int
    affected: list[GrantView]  # the first AFFECTED_SHOWN suspended or rejected grants


# --- input checks ------------------------------------------------------------------------------


def parse_input(field: str, parse, value):
    """Run a domain parser and name the API input field when it refuses."""
    try:
        return parse(value)
    except DomainError as err:
        raise OpsError("BAD_INPUT", err.message, field=field, reason=err.code) from None


def check_length(field: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise OpsError("BAD_INPUT", f"{field} is longer than {limit} characters", field=field)


def parse_tenant(value: str, field: str = "tenant") -> str:
    check_length(field, value, MAX_PATH)
    return parse_input(field, parse_tenant_path, value).path


def parse_grant_id(value: str, field: str = "id") -> int:
    if not (value.isascii() and value.isdigit() and len(value) <= MAX_ID_DIGITS):
        raise OpsError("BAD_INPUT", "a grant id is a decimal number", field=field)
    return int(value)


def parse_service(value: str, field: str = "service") -> str:
    check_length(field, value, MAX_NAME)
    return parse_input(field, parse_card_service, value).value


def parse_kind(value: str, field: str = "outletKind") -> str:
    check_length(field, value, MAX_NAME)
    return parse_input(field, parse_outlet_kind, value).value


def check_reason(reason: str, field: str = "reason") -> str:
    return reason_text(reason, field)


# --- reading -----------------------------------------------------------------------------------


def _views_query():
    return (
        select(Grant, Tenant.path, _Proposer.name, _Approver.name)
        .join(Tenant, Tenant.id == Grant.tenant_id)
        .outerjoin(_Proposer, _Proposer.id == Grant.proposed_by)
        .outerjoin(_Approver, _Approver.id == Grant.approved_by)
    )


async def _view(session: AsyncSession, grant_id: int) -> GrantView | None:
    row = (await session.exec(_views_query().where(Grant.id == grant_id))).first()
    return GrantView(*row) if row else None


async def views(session: AsyncSession, grant_ids: Iterable[int]) -> list[GrantView]:
    ids = list(grant_ids)
    if not ids:
        return []
    rows = (await session.exec(_views_query().where(Grant.id.in_(ids)).order_by(Grant.id))).all()
    return [GrantView(*row) for row in rows]


async def principal_names(sessions: async_sessionmaker[AsyncSession], ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    async with sessions() as session:
        rows = (
            await session.exec(select(Principal.id, Principal.name).where(Principal.id.in_(wanted)))
        ).all()
    return dict(rows)


async def _outlet_filter(session: AsyncSession, outlet_id: str):
    """Grants that name the outlet, and grants to its kind by its own tenant or one above it."""
    row = (
        await session.exec(
            select(Outlet.kind, Tenant.path)
            .join(Tenant, Tenant.id == Outlet.tenant_id)
            .where(Outlet.id == outlet_id)
        )
    ).first()
    if row is None:
        return Grant.outlet_id == outlet_id
    kind, path = row
    return or_(
        Grant.outlet_id == outlet_id,
        and_(Grant.outlet_kind == kind, Tenant.path.in_(ancestor_paths(path))),
    )


async def list_grants(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    filters: GrantFilter,
    *,
    after: str | None,
    limit: int,
    request_id: str | None = None,
) -> tuple[list[GrantView], int]:
    """Grants made by tenants in `filters.tenant`'s subtree (default: all the caller may read),
    keyset-paged by id."""
    if filters.tenant is not None:
        tenant = parse_tenant(filters.tenant)
        await authorize(sessions, actor, "read", "grant", tenant, request_id=request_id)
        scopes = [tenant]
    else:
        scopes = [s for s in actor.guard.scopes() if actor.guard.can("read", "grant", s)]
    conditions = [or_(*(in_subtree(Tenant.path, s) for s in scopes))] if scopes else []
    if filters.service is not None:
        conditions.append(Grant.service == parse_service(filters.service))
    if filters.state is not None:
        if filters.state not in GRANT_STATES:
            raise OpsError("BAD_INPUT", f"state is one of {', '.join(GRANT_STATES)}", field="state")
        conditions.append(Grant.state == filters.state)
    if filters.active_at is not None:
        if filters.active_at.tzinfo is None:
            raise OpsError("BAD_INPUT", "activeAt needs a time zone", field="activeAt")
        at = filters.active_at
        conditions += [
            Grant.state == "active",
            Grant.valid_from <= at,
            or_(Grant.valid_until.is_(None), Grant.valid_until > at),
        ]
    check_length("outlet", filters.outlet, MAX_OUTLET_ID)
    after_id = parse_grant_id(after, "after") if after is not None else None
    if not scopes:
        return [], 0
    async with sessions() as session:
        if filters.outlet is not None:
            conditions.append(await _outlet_filter(session, filters.outlet))
        where = and_(*conditions)
        total = (
            await session.exec(
                select(func.count())
                .select_from(Grant)
                .join(Tenant, Tenant.id == Grant.tenant_id)
                .where(where)
            )
        ).one()
        query = _views_query().where(where).order_by(Grant.id).limit(limit + 1)
        if after_id is not None:
            query = query.where(Grant.id > after_id)
        return [GrantView(*row) for row in (await session.exec(query)).all()], total


async def _grant_tenant(sessions: async_sessionmaker[AsyncSession], grant_id: int) -> str | None:
    async with sessions() as session:
        return (
            await session.exec(
                select(Tenant.path).join(Grant, Grant.tenant_id == Tenant.id).where(Grant.id == grant_id)
            )
        ).first()


async def _grant_in_reach(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, act: str, grant_id: int, request_id: str | None
) -> str | None:
    """The granting tenant of a grant the actor may `act` on, or None when there is no such grant and
    the actor's reach is the whole country; FORBIDDEN otherwise.

    A grant outside the caller's reach and a grant that does not exist get the same answer, which
    names neither the grant's tenant nor whether it exists (DESIGN.md §7; the security review found
    `grant(id:)` telling them apart); the denial event records which it was."""
    tenant = await _grant_tenant(sessions, grant_id)
    if tenant is not None and actor.guard.can(act, "grant", tenant):
        return tenant
    if tenant is None and actor.guard.can(act, "grant", ROOT):
        return None
    raise await deny(
        sessions,
        actor,
        f"grant.{act}",
        "grant",
        str(grant_id),
        tenant or home_tenant(actor),
        request_id=request_id,
        why=f"no role allows {act} on grant in {tenant}" if tenant else f"grant {grant_id} does not exist",
        message=f"not allowed to {act} grant {grant_id}",
    )


async def get_grant(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, grant_id: str, *, request_id: str | None = None
) -> GrantView | None:
    """One grant; FORBIDDEN when it is outside the caller's reach or (for a caller whose reach is not
    the whole country) does not exist; None when it does not exist, to a national caller."""
    gid = parse_grant_id(grant_id)
    if await _grant_in_reach(sessions, actor, "read", gid, request_id) is None:
        return None
    async with sessions() as session:
        return await _view(session, gid)


# --- creating and changing grants --------------------------------------------------------------


@audited_use_case("grant.create")
async def create_grant(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    req: grants.GrantRequest,
    *,
    request_id: str | None = None,
) -> GrantView:
    """A grant to one outlet or one outlet kind: proposed when two-person approval is on, else active."""
    tenant = parse_tenant(req.tenant)
    check_length("outletId", req.outlet_id, MAX_OUTLET_ID)
    service = parse_service(req.service)
    kind = parse_kind(req.outlet_kind) if req.outlet_kind is not None else None
    await authorize(sessions, actor, "write", "grant", tenant, request_id=request_id)
    async with sessions() as session, session.begin():
        settings = await effective_settings(session, tenant)
        row = await grants.grant_service(
            session,
            grants.GrantRequest(
                tenant=tenant,
                service=service,
                valid_from=req.valid_from,
                document_ref=req.document_ref,
                outlet_id=req.outlet_id,
                outlet_kind=kind,
                valid_until=req.valid_until,
                reason=req.reason,
            ),
            actor=actor.label,
            credential=actor.credential,
            proposed=settings.two_person_approval,
            proposed_by=actor.principal_id,
            request_id=request_id,
        )
        return await _view(session, row.id)


async def _locked_grant(session: AsyncSession, grant_id: int, expected_version: int) -> Grant:
    row = await session.get(Grant, grant_id, with_for_update=True)
    if row is None:
        raise not_found("grant", str(grant_id))
    if row.version != expected_version:
        raise version_conflict(f"grant {grant_id}", row.version, expected_version)
    return row


async def _tenant_of(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, act: str, grant_id: int, request_id: str | None
) -> str:
    tenant = await _grant_in_reach(sessions, actor, act, grant_id, request_id)
    if tenant is None:
        raise not_found("grant", str(grant_id))
    return tenant


async def _creator_chain(session: AsyncSession, principal_id: int) -> list[int]:
    """The principal, the one who created it, the one who created that one, and so on."""
    chain: list[int] = []
    current: int | None = principal_id
    while current is not None and current not in chain and len(chain) < MAX_CREATOR_CHAIN:
        chain.append(current)
        current = (await session.exec(select(Principal.created_by).where(Principal.id == current))).first()
    return chain


async def approval_refusal(
    session: AsyncSession, actor: Actor, proposer: int | None, what: str
) -> str | None:
    """Why `actor` may not approve `what`, proposed by `proposer` (see the module docstring), or None.

    The answer names the link that stands in the way, so the department knows whom to ask."""
    if proposer is None:
        return None
    if proposer == actor.principal_id:
        why = "you proposed it"
    else:
        mine = await _creator_chain(session, actor.principal_id)
        theirs = await _creator_chain(session, proposer)
        common = next((pid for pid in mine if pid in theirs), None)
        if common is None:
            return None
        names = await _names(session, {proposer, common})
        if common == proposer:
            why = (
                f"its proposer {names[proposer]} created your account, directly or through accounts "
                "they created"
            )
        elif common == actor.principal_id:
            why = (
                f"you created the account of its proposer {names[proposer]}, directly or through "
                "accounts you created"
            )
        else:
            why = (
                f"you and its proposer {names[proposer]} were both created through accounts of "
                f"{names[common]}, who could have held both credentials"
            )
    return f"you may not approve {what}: {why}; another person must approve it"


async def _names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    return dict((await session.exec(select(Principal.id, Principal.name).where(Principal.id.in_(ids)))).all())


@audited_use_case("grant.decide")
async def decide_grant(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    grant_id: str,
    *,
    approve: bool,
    expected_version: int,
    reason: str | None = None,
    request_id: str | None = None,
) -> GrantView:
    """Approve (activating the grant after re-checking its ceiling) or reject a proposal."""
    gid = parse_grant_id(grant_id)
    why = check_reason(reason) if reason is not None or not approve else None
    tenant = await _tenant_of(sessions, actor, "approve", gid, request_id)
    refusal = None
    async with sessions() as session, session.begin():
        row = await _locked_grant(session, gid, expected_version)
        refusal = await approval_refusal(session, actor, row.proposed_by, f"grant {gid}") if approve else None
        if refusal is None:
            await grants.decide_proposal(
                session,
                gid,
                approve=approve,
                actor=actor.label,
                credential=actor.credential,
                decided_by=actor.principal_id,
                why=why,
                request_id=request_id,
            )
            return await _view(session, gid)
    raise await deny(
        sessions, actor, "grant.approve", "grant", str(gid), tenant, request_id=request_id, why=refusal
    )


@audited_use_case("grant.change_state")
async def change_grant_state(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    grant_id: str,
    new_state: str,
    *,
    reason: str,
    expected_version: int,
    request_id: str | None = None,
) -> GrantView:
    """Suspend, resume (CEILING_EXCEEDED if the ceiling no longer allows it) or revoke a grant.

    Resuming needs no second approval: the grant was approved before it was suspended.
    """
    gid = parse_grant_id(grant_id)
    why = check_reason(reason)
    await _tenant_of(sessions, actor, "write", gid, request_id)
    async with sessions() as session, session.begin():
        await _locked_grant(session, gid, expected_version)
        await grants.change_state(
            session,
            gid,
            new_state,
            actor=actor.label,
            credential=actor.credential,
            why=why,
            request_id=request_id,
        )
        return await _view(session, gid)


# --- ceilings ----------------------------------------------------------------------------------


def _ceiling_view(row: Ceiling, tenant_path: str, set_by: str | None) -> CeilingView:
    return CeilingView(
        tenant_path, row.outlet_kind, row.services.split(), row.version, row.updated_at, set_by
    )


@audited_use_case("ceiling.set")
async def set_tenant_ceiling(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    tenant: str,
    outlet_kind: str,
    services: list[str],
    *,
    expected_version: int | None = None,
    request_id: str | None = None,
) -> CeilingChange:
    """Set what `tenant`'s descendants may extend to `outlet_kind`; suspends the grants that no
    longer fit. `expected_version` 0 means "no ceiling is set yet"."""
    path = parse_tenant(tenant)
    kind = parse_kind(outlet_kind)
    if len(services) > MAX_CEILING_SERVICES:
        raise OpsError("BAD_INPUT", f"at most {MAX_CEILING_SERVICES} card services", field="services")
    for service in services:
        check_length("services", service, MAX_NAME)
    allowed = parse_input("services", parse_ceiling_services, services)
    await authorize(
        sessions, actor, "write", "ceiling", path, target_id=f"{path}:{kind}", request_id=request_id
    )
    # Two first settings of one ceiling both find no row to lock; the second insert then collides.
    try:
        async with sessions() as session, session.begin():
            tenant_row = await grants.tenant_by_path(session, path)
            if expected_version is not None:
                current = (
                    await session.exec(
                        select(Ceiling.version)
                        .where(Ceiling.tenant_id == tenant_row.id, Ceiling.outlet_kind == kind)
                        .with_for_update()
                    )
                ).first()
                if (current or 0) != expected_version:
                    raise version_conflict(
                        f"the ceiling of {path} for {kind}", current or 0, expected_version
                    )
            result = await ceilings.set_ceiling(
                session,
                path,
                kind,
                sorted(allowed),
                actor=actor.label,
                credential=actor.credential,
                set_by=actor.principal_id,
                request_id=request_id,
            )
            affected = await views(session, [g.id for g in result.suspended[:AFFECTED_SHOWN]])
            return CeilingChange(
                _ceiling_view(result.ceiling, path, actor.name), len(result.suspended), affected
            )
    except IntegrityError:
        raise changed_meanwhile(f"the ceiling of {path} for {kind}") from None


async def tenant_ceilings(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, tenant: str, *, request_id: str | None = None
) -> TenantCeilings:
    """The ceilings `tenant` set for those below it, and the ceilings that bind its own grants."""
    path = parse_tenant(tenant)
    await authorize(sessions, actor, "read", "ceiling", path, request_id=request_id)
    async with sessions() as session:
        tenant_row = await grants.tenant_by_path(session, path)
        own = (
            await session.exec(
                select(Ceiling, Principal.name)
                .outerjoin(Principal, Principal.id == Ceiling.set_by)
                .where(Ceiling.tenant_id == tenant_row.id)
                .order_by(Ceiling.outlet_kind)
            )
        ).all()
        table = await grants.ceiling_table(session)
    effective = []
    for kind in OutletKind:
        allowed, cut_by = effective_ceiling_for_grant(path, kind.value, table)
        effective.append(EffectiveCeiling(kind.value, sorted(allowed), sorted(cut_by.items())))
    return TenantCeilings(path, [_ceiling_view(row, path, name) for row, name in own], effective)
