"""Grant use cases of the admin API: the admin-plane check, then one transaction.

Who may do what (policies/admin_roles.csv): reading grants needs `read`; creating, suspending,
resuming and revoking grants needs `write` on grant in the grant's tenant; deciding a proposal needs
`approve` on grant there, and an approver linked to the proposer is refused (grants/approval.py).
When the granting tenant's effective two-person approval is on, every new grant is a proposal,
whoever makes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import and_, func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.regions import ROOT, ancestor_paths
from app.ops.auth import Actor, authorize, deny, home_tenant
from app.ops.errors import OpsError, check_version, not_found
from app.ops.grants import changes as grants
from app.ops.grants.approval import approval_refusal
from app.ops.grants.views import GrantView, view, views_query
from app.ops.inputs import (
    MAX_OUTLET_ID,
    check_length,
    parse_grant_id,
    parse_kind,
    parse_service,
    parse_tenant,
    reason_text,
)
from app.ops.refusals import audited_use_case
from app.store.queries import effective_settings, in_any_subtree
from app.store.tables import Grant, Outlet, Tenant

GRANT_STATES = ("proposed", "active", "suspended", "revoked", "expired", "rejected")


@dataclass(frozen=True)
class GrantFilter:
    tenant: str | None = None
    outlet: str | None = None
    service: str | None = None
    state: str | None = None
    active_at: datetime | None = None


# --- reading -----------------------------------------------------------------------------------


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
    conditions = [in_any_subtree(Tenant.path, scopes)] if scopes else []
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
        query = views_query().where(where).order_by(Grant.id).limit(limit + 1)
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
        return await view(session, gid)


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
        return await view(session, row.id)


async def _locked_grant(session: AsyncSession, grant_id: int, expected_version: int) -> Grant:
    row = await session.get(Grant, grant_id, with_for_update=True)
    if row is None:
        raise not_found("grant", str(grant_id))
    check_version(f"grant {grant_id}", row.version, expected_version)
    return row


async def _tenant_of(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, act: str, grant_id: int, request_id: str | None
) -> str:
    tenant = await _grant_in_reach(sessions, actor, act, grant_id, request_id)
    if tenant is None:
        raise not_found("grant", str(grant_id))
    return tenant


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
    if reason is None and not approve:
        raise OpsError("BAD_INPUT", "say why the proposal is rejected", field="reason")
    why = reason_text(reason) if reason is not None else None
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
            return await view(session, gid)
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
    why = reason_text(reason)
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
        return await view(session, gid)


# --- ceilings ----------------------------------------------------------------------------------
