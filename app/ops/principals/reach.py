"""Who may see and manage whom among people, and the input checks of the people use cases.

Reach (DESIGN.md §5: nobody acts above their own role or outside their subtree):
- a person is *visible* to you when you may read principals where one of their roles is held, and
  you always see yourself; anyone else answers FORBIDDEN, whether or not they exist;
- you *manage* a person when you could have handed out every role they hold (write on principal
  there, and AdminGuard.may_assign). Deactivating a person and revoking their tokens act on the
  whole person, so they need that; you may always revoke your own tokens.
Every refusal of reach writes a denial event in a transaction of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.admin import ROLE_RANK
from app.domain.regions import TenantPath, dom_in, parse_tenant_path
from app.domain.roles import check_role_level, parse_role
from app.ops.auth import Actor, deny, home_tenant, top_most
from app.ops.errors import OpsError
from app.ops.inputs import parse_input
from app.ops.principals.credentials import (
    check_principal_name,
    check_token_days,
)
from app.store.tables import Principal, RoleAssignment, Tenant

MAX_ROLE = 32


Roles = Sequence[tuple[str, str]]  # (role, tenant path) pairs


def name_input(value: str) -> str:
    return parse_input("name", check_principal_name, value)


def tenant_input(value: str) -> TenantPath:
    return parse_input("tenant", parse_tenant_path, value)


def role_input(value: str, path: TenantPath | None = None) -> str:
    """A role name that exists and, given a tenant, fits its level."""
    if len(value) > MAX_ROLE:
        raise OpsError("BAD_INPUT", f"a role name has at most {MAX_ROLE} characters", field="role")
    role = parse_input("role", parse_role, value)
    if path is not None:
        parse_input("role", lambda r: check_role_level(r, path.level), role)
    return role.value


def days_input(value: int, field: str) -> int:
    return parse_input(field, check_token_days, value)


def visible(actor: Actor, principal_id: int, roles: Roles) -> bool:
    return principal_id == actor.principal_id or any(
        actor.guard.can("read", "principal", path) for _, path in roles
    )


def manages(actor: Actor, roles: Roles) -> bool:
    return bool(roles) and all(
        actor.guard.can("write", "principal", path) and actor.guard.may_assign(role, path)
        for role, path in roles
    )


def rank_at(actor: Actor, path: str) -> int:
    """The actor's best rank among the roles that cover `path`."""
    return max((ROLE_RANK[role] for role, held in actor.assignments if dom_in(path, held)), default=-1)


def home_of(actor: Actor, roles: Roles = ()) -> str:
    """The audit chain for an event about a person: their top-most role's tenant, else the actor's."""
    return top_most(p for _, p in roles) or home_tenant(actor)


class Refused(Exception):
    def __init__(self, action: str, target: str, tenant: str, message: str) -> None:
        super().__init__(message)
        self.action, self.target, self.tenant, self.message = action, target, tenant, message


def out_of_reach(action: str, actor: Actor, name: str) -> Refused:
    # The same words whether or not the person exists (DESIGN.md §7).
    return Refused(action, name, home_of(actor), f"no principal {name} within your reach")


async def deny_refused(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, refused: Refused, request_id: str | None
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
async def audited_refusals(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, request_id: str | None
) -> AsyncIterator[None]:
    """A refusal raised inside a transaction becomes FORBIDDEN once that transaction rolled back."""
    try:
        yield
    except Refused as refused:
        raise await deny_refused(sessions, actor, refused, request_id) from None


async def roles_of(session: AsyncSession, principal_ids: Sequence[int]) -> dict[int, list[tuple[str, str]]]:
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


async def load_principal(session: AsyncSession, name: str) -> tuple[Principal | None, list[tuple[str, str]]]:
    """The person by name, locked for this transaction so concurrent role changes queue up."""
    row = (await session.exec(select(Principal).where(Principal.name == name).with_for_update())).first()
    if row is None:
        return None, []
    return row, (await roles_of(session, [row.id]))[row.id]
