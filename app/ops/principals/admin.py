"""People and their roles, as administrators create and change them (reach: principals/reach.py).

Guard rails: nobody deactivates themselves, a person's last role is not removed (deactivate them
instead, so nobody is left invisible to every administrator), and nobody removes their own last
administrator role. Every change writes one audit event in its transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.admin import ROLE_RANK
from app.ops.auth import Actor, authorize
from app.ops.errors import OpsError, check_version
from app.ops.inputs import display_text, reason_text
from app.ops.principals.console_sessions import end_sessions
from app.ops.principals.credentials import (
    IssuedToken,
    add_token,
)
from app.ops.principals.reach import (
    Refused,
    audited_refusals,
    deny_refused,
    home_of,
    load_principal,
    manages,
    name_input,
    out_of_reach,
    rank_at,
    role_input,
    tenant_input,
    visible,
)
from app.ops.principals.views import PrincipalView, view_of
from app.ops.refusals import audited_use_case
from app.store.audit import append_event
from app.store.tables import PersonalToken, Principal, RoleAssignment, RoleAssignmentEnded, Tenant

MAX_DISPLAY_NAME = 128
DEFAULT_ENROLMENT_HOURS = 24


# --- what callers get back -----------------------------------------------------------------------


# --- input checks (before anything is read or written) ------------------------------------------


# --- reach --------------------------------------------------------------------------------------


# --- reading ------------------------------------------------------------------------------------


# --- changing -----------------------------------------------------------------------------------


async def _tenant_row(session: AsyncSession, path: str) -> Tenant:
    row = (await session.exec(select(Tenant).where(Tenant.path == path))).first()
    if row is None:
        raise OpsError("NOT_FOUND", f"no tenant {path}", field="tenant")
    return row


async def _may_assign(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    action: str,
    name: str,
    role: str,
    path: str,
    request_id: str | None,
) -> None:
    await authorize(sessions, actor, "write", "principal", path, target_id=name, request_id=request_id)
    if not actor.guard.may_assign(role, path):
        refused = Refused(action, name, path, f"you may not hand out {role} in {path}")
        raise await deny_refused(sessions, actor, refused, request_id)


@audited_use_case("principal.create")
async def create_principal(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    *,
    name: str,
    tenant: str,
    role: str,
    display_name: str | None = None,
    enrolment_hours: int = DEFAULT_ENROLMENT_HOURS,
    request_id: str | None = None,
) -> tuple[PrincipalView, IssuedToken]:
    """A new person with one role and a one-time enrolment token, shown to the caller this once:
    the person redeems it with `issueToken` for their own token (app/ops/principals/credentials.py)."""
    name = name_input(name)
    display = (
        display_text(display_name, "displayName", MAX_DISPLAY_NAME) if display_name is not None else name
    )
    path = tenant_input(tenant)
    role = role_input(role, path)
    await _may_assign(sessions, actor, "principal.create", name, role, path.path, request_id)
    async with sessions() as session, session.begin():
        tenant_row = await _tenant_row(session, path.path)
        if (await session.exec(select(Principal.id).where(Principal.name == name))).first() is not None:
            raise _name_taken(name)
        principal = Principal(name=name, display_name=display, created_by=actor.principal_id)
        session.add(principal)
        try:
            await session.flush()
        except IntegrityError:  # created concurrently under the same name
            raise _name_taken(name) from None
        session.add(
            RoleAssignment(
                principal_id=principal.id, tenant_id=tenant_row.id, role=role, created_by=actor.principal_id
            )
        )
        expires_at = datetime.now(UTC) + timedelta(hours=enrolment_hours)
        issued = await add_token(session, principal, expires_at, one_time=True)
        await append_event(
            session,
            tenant=path.path,
            actor=actor.label,
            credential=actor.credential,
            action="principal.create",
            target_type="principal",
            target_id=name,
            request_id=request_id,
            detail={
                "display_name": display,
                "role": role,
                "tenant": path.path,
                "enrolment_token_id": issued.token_id,
                "token_prefix": issued.prefix,
                "expires_at": issued.expires_at.isoformat(),
            },
        )
        return await view_of(session, actor, principal.id), issued


def _name_taken(name: str) -> OpsError:
    # Login names are one namespace for the whole platform, so a taken name must be refused wherever
    # its holder works; the answer is the same whether or not the holder is within your reach.
    return OpsError("CONFLICT", f"the login name {name} is not available; choose another", field="name")


@audited_use_case("principal.assign_role")
async def assign_role(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    *,
    name: str,
    tenant: str,
    role: str,
    request_id: str | None = None,
) -> PrincipalView:
    """Give a person you can see one more role, one you may hand out yourself."""
    name = name_input(name)
    path = tenant_input(tenant)
    role = role_input(role, path)
    await _may_assign(sessions, actor, "principal.assign_role", name, role, path.path, request_id)
    async with audited_refusals(sessions, actor, request_id), sessions() as session, session.begin():
        tenant_row = await _tenant_row(session, path.path)
        principal, roles = await load_principal(session, name)
        if principal is None or not visible(actor, principal.id, roles):
            raise out_of_reach("principal.assign_role", actor, name)
        if not principal.active:
            raise OpsError("CONFLICT", f"{name} is deactivated", field="name")
        if (role, path.path) in roles:
            raise OpsError("CONFLICT", f"{name} already holds {role} in {path.path}", field="role")
        session.add(
            RoleAssignment(
                principal_id=principal.id, tenant_id=tenant_row.id, role=role, created_by=actor.principal_id
            )
        )
        return await _role_changed(
            session, actor, "principal.assign_role", principal, role, path.path, request_id
        )


async def _role_changed(
    session: AsyncSession,
    actor: Actor,
    action: str,
    principal: Principal,
    role: str,
    tenant: str,
    request_id: str | None,
) -> PrincipalView:
    """The common end of assigning and removing a role: new version, audit event, the view."""
    principal.version += 1
    await append_event(
        session,
        tenant=tenant,
        actor=actor.label,
        credential=actor.credential,
        action=action,
        target_type="principal",
        target_id=principal.name,
        request_id=request_id,
        detail={"role": role, "tenant": tenant, "version": principal.version},
    )
    return await view_of(session, actor, principal.id)


async def _label_of(session: AsyncSession, principal_id: int | None) -> str | None:
    """principal:<name> of whoever gave a role (None: the tenant files or an early migration)."""
    if principal_id is None:
        return None
    name = (await session.exec(select(Principal.name).where(Principal.id == principal_id))).first()
    return f"principal:{name}" if name else None


@audited_use_case("principal.remove_role")
async def remove_role(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    *,
    name: str,
    tenant: str,
    role: str,
    request_id: str | None = None,
) -> PrincipalView:
    """Take one role away; not from someone who outranks you, and never a person's last role."""
    name = name_input(name)
    path = tenant_input(tenant)
    role = role_input(role)
    action = "principal.remove_role"
    await _may_assign(sessions, actor, action, name, role, path.path, request_id)
    async with audited_refusals(sessions, actor, request_id), sessions() as session, session.begin():
        principal, roles = await load_principal(session, name)
        if principal is None or not visible(actor, principal.id, roles):
            raise out_of_reach(action, actor, name)
        if (role, path.path) not in roles:
            raise OpsError("NOT_FOUND", f"{name} does not hold {role} in {path.path}", field="role")
        if max(ROLE_RANK[r] for r, _ in roles) > rank_at(actor, path.path):
            raise Refused(action, name, path.path, f"{name} holds a role above yours")
        rest = [r for r in roles if r != (role, path.path)]
        if not rest:
            raise OpsError("CONFLICT", f"{role} is {name}'s last role; deactivate them instead", field="role")
        if principal.id == actor.principal_id and not any(ROLE_RANK[r] > 0 for r, _ in rest):
            raise OpsError(
                "CONFLICT",
                "this is your last administrator role; another administrator must remove it",
                field="role",
            )
        assignment = (
            await session.exec(
                select(RoleAssignment)
                .join(Tenant, Tenant.id == RoleAssignment.tenant_id)
                .where(
                    RoleAssignment.principal_id == principal.id,
                    RoleAssignment.role == role,
                    Tenant.path == path.path,
                )
            )
        ).one()
        session.add(
            RoleAssignmentEnded(
                principal_id=principal.id,
                tenant=path.path,
                role=role,
                added_at=assignment.created_at,
                added_by=await _label_of(session, assignment.created_by),
                removed_at=datetime.now(UTC),
                removed_by=actor.label,
            )
        )
        await session.delete(assignment)
        return await _role_changed(session, actor, action, principal, role, path.path, request_id)


@audited_use_case("principal.deactivate")
async def deactivate_principal(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    *,
    name: str,
    reason: str,
    expected_version: int | None = None,
    request_id: str | None = None,
) -> PrincipalView:
    """Switch a person off for good: their tokens stop working and are revoked; roles stay on record."""
    name = name_input(name)
    reason = reason_text(reason)
    action = "principal.deactivate"
    async with audited_refusals(sessions, actor, request_id), sessions() as session, session.begin():
        principal, roles = await load_principal(session, name)
        if principal is None or not visible(actor, principal.id, roles):
            raise out_of_reach(action, actor, name)
        if principal.id == actor.principal_id:
            raise OpsError("BAD_INPUT", "you cannot deactivate yourself", field="name")
        if not manages(actor, roles):
            raise Refused(action, name, home_of(actor, roles), f"{name} holds a role you may not manage")
        check_version(name, principal.version, expected_version)
        if not principal.active:
            raise OpsError("CONFLICT", f"{name} is already deactivated", field="name")
        now = datetime.now(UTC)
        live = (
            await session.exec(
                select(PersonalToken).where(
                    PersonalToken.principal_id == principal.id, PersonalToken.revoked_at.is_(None)
                )
            )
        ).all()
        for token in live:
            token.revoked_at = now
        principal.active = False
        principal.deactivated_at = now
        principal.version += 1
        ended_sessions = await end_sessions(session, principal.id, "deactivated")
        await append_event(
            session,
            tenant=home_of(actor, roles),
            actor=actor.label,
            credential=actor.credential,
            action=action,
            target_type="principal",
            target_id=name,
            request_id=request_id,
            detail={
                "reason": reason,
                "revoked_tokens": [t.prefix for t in live],
                "ended_console_sessions": ended_sessions,
                "version": principal.version,
            },
        )
        return await view_of(session, actor, principal.id)
