"""People, their roles and their tokens, as administrators see and change them.

Reach (DESIGN.md §5: nobody acts above their own role or outside their subtree):
- a person is *visible* to you when you may read principals where one of their roles is held, and
  you always see yourself; anyone else answers FORBIDDEN, whether or not they exist;
- you *manage* a person when you could have handed out every role they hold (write on principal
  there, and AdminGuard.may_assign). Deactivating a person, giving them a token and revoking their
  tokens act on the whole person, so they need that; you may always revoke your own tokens and
  issue yourself a new one;
- a role is assigned or removed by someone who may hand it out in that tenant; a role is not removed
  from a person who outranks the remover.
Guard rails: nobody deactivates themselves, a person's last role is not removed (deactivate them
instead, so nobody is left invisible to every administrator), and nobody removes their own last
administrator role.

Every change writes one audit event in its transaction (a token appears only by its prefix); every
refusal of reach writes a denial event in a transaction of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import aliased
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.admin import ROLE_RANK
from app.domain.errors import DomainError
from app.domain.regions import TenantPath, dom_in, parse_tenant_path
from app.domain.roles import check_role_level, parse_role
from app.ops.auth import Actor, authorize, deny, home_tenant, top_most
from app.ops.errors import OpsError, version_conflict
from app.ops.inputs import display_text, reason_text
from app.ops.refusals import audited_use_case
from app.ops.tenant_queries import in_subtree
from app.ops.tokens import (
    SHOWN_CHARS,
    IssuedToken,
    add_token,
    check_principal_name,
    check_token_days,
)
from app.store.audit import append_event
from app.store.tables import PersonalToken, Principal, RoleAssignment, Tenant

MAX_DISPLAY_NAME = 128
MAX_ROLE = 32
DEFAULT_TOKEN_DAYS = 90
DEFAULT_ENROLMENT_HOURS = 24

Roles = Sequence[tuple[str, str]]  # (role, tenant path) pairs


# --- what callers get back -----------------------------------------------------------------------


@dataclass(frozen=True)
class TokenView:
    id: int
    prefix: str
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime
    one_time: bool = False


@dataclass(frozen=True)
class PrincipalView:
    id: int
    name: str
    display_name: str
    active: bool
    version: int
    created_at: datetime
    created_by: str | None
    roles: tuple[tuple[str, str], ...]  # only those in the viewer's reach
    tokens: tuple[TokenView, ...]


# --- input checks (before anything is read or written) ------------------------------------------


def _bad(err: DomainError, field: str) -> OpsError:
    return OpsError("BAD_INPUT", err.message, field=field, reason=err.code)


def _name(value: str) -> str:
    try:
        return check_principal_name(value)
    except DomainError as err:
        raise _bad(err, "name") from None


def _tenant(value: str) -> TenantPath:
    try:
        return parse_tenant_path(value)
    except DomainError as err:
        raise _bad(err, "tenant") from None


def _role(value: str, path: TenantPath | None = None) -> str:
    if len(value) > MAX_ROLE:
        raise OpsError("BAD_INPUT", f"a role name has at most {MAX_ROLE} characters", field="role")
    try:
        role = parse_role(value)
        if path is not None:
            check_role_level(role, path.level)
    except DomainError as err:
        raise _bad(err, "role") from None
    return role.value


def _days(value: int, field: str) -> int:
    try:
        return check_token_days(value)
    except DomainError as err:
        raise _bad(err, field) from None


# --- reach --------------------------------------------------------------------------------------


def _visible(actor: Actor, principal_id: int, roles: Roles) -> bool:
    return principal_id == actor.principal_id or any(
        actor.guard.can("read", "principal", path) for _, path in roles
    )


def _manages(actor: Actor, roles: Roles) -> bool:
    return bool(roles) and all(
        actor.guard.can("write", "principal", path) and actor.guard.may_assign(role, path)
        for role, path in roles
    )


def _rank_at(actor: Actor, path: str) -> int:
    """The actor's best rank among the roles that cover `path`."""
    return max((ROLE_RANK[role] for role, held in actor.assignments if dom_in(path, held)), default=-1)


def _home(actor: Actor, roles: Roles = ()) -> str:
    """The audit chain for an event about a person: their top-most role's tenant, else the actor's."""
    return top_most(p for _, p in roles) or home_tenant(actor)


class _Refused(Exception):
    def __init__(self, action: str, target: str, tenant: str, message: str) -> None:
        super().__init__(message)
        self.action, self.target, self.tenant, self.message = action, target, tenant, message


def _out_of_reach(action: str, actor: Actor, name: str) -> _Refused:
    # The same words whether or not the person exists (DESIGN.md §7).
    return _Refused(action, name, _home(actor), f"no principal {name} within your reach")


async def _deny(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, refused: _Refused, request_id: str | None
) -> OpsError:
    """Audit a refusal in a transaction of its own; returns the FORBIDDEN to raise."""
    return await deny(
        sessions,
        actor,
        refused.action,
        "principal",
        refused.target,
        refused.tenant,
        request_id=request_id,
        why=refused.message,
    )


@asynccontextmanager
async def _audited_refusals(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, request_id: str | None
) -> AsyncIterator[None]:
    """A refusal raised inside a transaction becomes FORBIDDEN once that transaction rolled back."""
    try:
        yield
    except _Refused as refused:
        raise await _deny(sessions, actor, refused, request_id) from None


# --- reading ------------------------------------------------------------------------------------


async def _roles_of(session: AsyncSession, principal_ids: Sequence[int]) -> dict[int, list[tuple[str, str]]]:
    rows = (
        await session.exec(
            select(RoleAssignment.principal_id, RoleAssignment.role, Tenant.path)
            .join(Tenant, Tenant.id == RoleAssignment.tenant_id)
            .where(RoleAssignment.principal_id.in_(principal_ids))
            .order_by(Tenant.path, RoleAssignment.role)
        )
    ).all()
    out: dict[int, list[tuple[str, str]]] = {pid: [] for pid in principal_ids}
    for pid, role, path in rows:
        out[pid].append((role, path))
    return out


async def _views(session: AsyncSession, actor: Actor, ids: Sequence[int]) -> list[PrincipalView]:
    """Principals `ids` in that order, each with the roles the actor may see and their tokens."""
    if not ids:
        return []
    creator = aliased(Principal)
    rows = {
        p.id: (p, by)
        for p, by in (
            await session.exec(
                select(Principal, creator.name)
                .outerjoin(creator, creator.id == Principal.created_by)
                .where(Principal.id.in_(ids))
            )
        ).all()
    }
    roles = await _roles_of(session, ids)
    tokens: dict[int, list[TokenView]] = {pid: [] for pid in ids}
    for t in (
        await session.exec(
            select(PersonalToken).where(PersonalToken.principal_id.in_(ids)).order_by(PersonalToken.id)
        )
    ).all():
        tokens[t.principal_id].append(
            TokenView(t.id, t.prefix, t.expires_at, t.revoked_at, t.created_at, t.one_time)
        )
    views = []
    for pid in ids:
        p, by = rows[pid]
        own = pid == actor.principal_id
        shown = tuple(r for r in roles[pid] if own or actor.guard.can("read", "principal", r[1]))
        views.append(
            PrincipalView(
                pid, p.name, p.display_name, p.active, p.version, p.created_at, by, shown, tuple(tokens[pid])
            )
        )
    return views


def _cursor_id(after: str | None) -> int:
    if after is None:
        return 0
    try:
        return int(after)
    except ValueError:
        raise OpsError("BAD_INPUT", "not a cursor from this list", field="after") from None


async def list_principals(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    *,
    tenant: str,
    after: str | None,
    limit: int,
    request_id: str | None = None,
) -> tuple[list[PrincipalView], int]:
    """People holding a role in `tenant`'s subtree, keyset-paged by principal id."""
    path = _tenant(tenant).path
    await authorize(sessions, actor, "read", "principal", path, request_id=request_id)
    members = (
        select(RoleAssignment.principal_id)
        .join(Tenant, Tenant.id == RoleAssignment.tenant_id)
        .where(in_subtree(Tenant.path, path))
    )
    async with sessions() as session:
        total = (
            await session.exec(select(func.count()).select_from(Principal).where(Principal.id.in_(members)))
        ).one()
        ids = (
            await session.exec(
                select(Principal.id)
                .where(Principal.id.in_(members), Principal.id > _cursor_id(after))
                .order_by(Principal.id)
                .limit(limit + 1)
            )
        ).all()
        return await _views(session, actor, ids), total


async def get_principal(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, name: str, *, request_id: str | None = None
) -> PrincipalView:
    name = _name(name)
    async with sessions() as session:
        row = (await session.exec(select(Principal.id).where(Principal.name == name))).first()
        roles = (await _roles_of(session, [row]))[row] if row is not None else []
        if row is not None and _visible(actor, row, roles):
            return (await _views(session, actor, [row]))[0]
    raise await _deny(sessions, actor, _out_of_reach("principal.read", actor, name), request_id)


async def _view(session: AsyncSession, actor: Actor, principal_id: int) -> PrincipalView:
    return (await _views(session, actor, [principal_id]))[0]


# --- changing -----------------------------------------------------------------------------------


async def _load(session: AsyncSession, name: str) -> tuple[Principal | None, list[tuple[str, str]]]:
    """The person by name, locked for this transaction so concurrent role changes queue up."""
    row = (await session.exec(select(Principal).where(Principal.name == name).with_for_update())).first()
    if row is None:
        return None, []
    return row, (await _roles_of(session, [row.id]))[row.id]


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
        refused = _Refused(action, name, path, f"you may not hand out {role} in {path}")
        raise await _deny(sessions, actor, refused, request_id)


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
    the person redeems it with `issueToken` for their own token (app/ops/tokens.py)."""
    name = _name(name)
    display = (
        display_text(display_name, "displayName", MAX_DISPLAY_NAME) if display_name is not None else name
    )
    path = _tenant(tenant)
    role = _role(role, path)
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
        return await _view(session, actor, principal.id), issued


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
    name = _name(name)
    path = _tenant(tenant)
    role = _role(role, path)
    await _may_assign(sessions, actor, "principal.assign_role", name, role, path.path, request_id)
    async with _audited_refusals(sessions, actor, request_id), sessions() as session, session.begin():
        tenant_row = await _tenant_row(session, path.path)
        principal, roles = await _load(session, name)
        if principal is None or not _visible(actor, principal.id, roles):
            raise _out_of_reach("principal.assign_role", actor, name)
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
    return await _view(session, actor, principal.id)


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
    name = _name(name)
    path = _tenant(tenant)
    role = _role(role)
    action = "principal.remove_role"
    await _may_assign(sessions, actor, action, name, role, path.path, request_id)
    async with _audited_refusals(sessions, actor, request_id), sessions() as session, session.begin():
        principal, roles = await _load(session, name)
        if principal is None or not _visible(actor, principal.id, roles):
            raise _out_of_reach(action, actor, name)
        if (role, path.path) not in roles:
            raise OpsError("NOT_FOUND", f"{name} does not hold {role} in {path.path}", field="role")
        if max(ROLE_RANK[r] for r, _ in roles) > _rank_at(actor, path.path):
            raise _Refused(action, name, path.path, f"{name} holds a role above yours")
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
    name = _name(name)
    reason = reason_text(reason)
    action = "principal.deactivate"
    async with _audited_refusals(sessions, actor, request_id), sessions() as session, session.begin():
        principal, roles = await _load(session, name)
        if principal is None or not _visible(actor, principal.id, roles):
            raise _out_of_reach(action, actor, name)
        if principal.id == actor.principal_id:
            raise OpsError("BAD_INPUT", "you cannot deactivate yourself", field="name")
        if not _manages(actor, roles):
            raise _Refused(action, name, _home(actor, roles), f"{name} holds a role you may not manage")
        if expected_version is not None and principal.version != expected_version:
            raise version_conflict(name, principal.version, expected_version)
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
        principal.version += 1
        await append_event(
            session,
            tenant=_home(actor, roles),
            actor=actor.label,
            credential=actor.credential,
            action=action,
            target_type="principal",
            target_id=name,
            request_id=request_id,
            detail={
                "reason": reason,
                "revoked_tokens": [t.prefix for t in live],
                "version": principal.version,
            },
        )
        return await _view(session, actor, principal.id)


def _token_expiry(actor: Actor, days: int | None) -> datetime:
    """When a token the actor issues for themself expires: `days` from now (default 90), but never
    after the acting token, unless that is the one-time enrolment token it replaces."""
    wanted = datetime.now(UTC) + timedelta(days=_days(DEFAULT_TOKEN_DAYS if days is None else days, "days"))
    limit = None if actor.enrolling else actor.token_expires_at
    if limit is None or wanted <= limit:
        return wanted
    if days is None:
        return limit
    raise OpsError(
        "BAD_INPUT",
        f"your token expires at {limit.isoformat(timespec='seconds')}; a token it issues may not outlive it",
        field="days",
    )


@audited_use_case("principal.issue_token")
async def issue_token(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    *,
    name: str | None = None,
    days: int | None = None,
    request_id: str | None = None,
) -> tuple[PrincipalView, IssuedToken]:
    """A new bearer token for yourself, shown this once; issued with your one-time enrolment token,
    it replaces that token (which is revoked). Nobody obtains a token for another person: an
    administrator revokes another person's tokens or deactivates them, never mints for them."""
    if name is not None and _name(name) != actor.name:
        refused = _Refused(
            "principal.issue_token",
            name,
            home_tenant(actor),
            "a token is issued only to its owner: the person signs in and calls issueToken themself",
        )
        raise await _deny(sessions, actor, refused, request_id)
    expires_at = _token_expiry(actor, days)
    async with sessions() as session, session.begin():
        principal, roles = await _load(session, actor.name)
        if principal is None or principal.id != actor.principal_id or not principal.active:
            raise OpsError("UNAUTHENTICATED", "unknown, expired or revoked token")
        issued = await add_token(session, principal, expires_at)
        replaced = None
        if actor.enrolling:
            replaced = await session.get(PersonalToken, actor.token_id, with_for_update=True)
            if replaced is None or replaced.revoked_at is not None:  # redeemed by a concurrent call
                raise OpsError("UNAUTHENTICATED", "unknown, expired or revoked token")
            replaced.revoked_at = datetime.now(UTC)
        await append_event(
            session,
            tenant=_home(actor, roles),
            actor=actor.label,
            credential=actor.credential,
            action="principal.issue_token",
            target_type="principal",
            target_id=actor.name,
            request_id=request_id,
            detail={
                "token_id": issued.token_id,
                "token_prefix": issued.prefix,
                "expires_at": issued.expires_at.isoformat(),
                "replaces_enrolment_token": replaced.id if replaced else None,
            },
        )
        return await _view(session, actor, principal.id), issued


@audited_use_case("principal.revoke_token")
async def revoke_token(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    *,
    prefix: str | None = None,
    token_id: int | None = None,
    request_id: str | None = None,
) -> PrincipalView:
    """Revoke one token, named by its id or its shown prefix: your own, or one of a person you manage."""
    if (prefix is None) == (token_id is None):
        raise OpsError("BAD_INPUT", "name the token by its id or by its prefix, not both", field="id")
    if prefix is not None and not 1 <= len(prefix) <= SHOWN_CHARS:
        raise OpsError("BAD_INPUT", f"a token prefix has at most {SHOWN_CHARS} characters", field="prefix")
    action = "principal.revoke_token"
    shown = prefix if prefix is not None else f"token {token_id}"
    async with _audited_refusals(sessions, actor, request_id), sessions() as session, session.begin():
        match = PersonalToken.prefix == prefix if prefix is not None else PersonalToken.id == token_id
        candidates = (
            await session.exec(
                select(PersonalToken, Principal)
                .join(Principal, Principal.id == PersonalToken.principal_id)
                .where(match)
                .with_for_update()
            )
        ).all()
        owners = await _roles_of(session, [p.id for _, p in candidates])
        mine = [(t, p) for t, p in candidates if p.id == actor.principal_id or _manages(actor, owners[p.id])]
        if not mine:
            raise _Refused(action, shown, _home(actor), f"no token {shown} within your reach")
        if len(mine) > 1:
            raise OpsError("CONFLICT", f"several tokens start with {prefix}; give its id", field="prefix")
        token, owner = mine[0]
        if token.revoked_at is not None:
            raise OpsError("CONFLICT", f"token {token.prefix} is already revoked", field="id")
        token.revoked_at = datetime.now(UTC)
        await append_event(
            session,
            tenant=_home(actor, owners[owner.id]),
            actor=actor.label,
            credential=actor.credential,
            action=action,
            target_type="principal",
            target_id=owner.name,
            request_id=request_id,
            detail={"token_id": token.id, "token_prefix": token.prefix},
        )
        return await _view(session, actor, owner.id)
