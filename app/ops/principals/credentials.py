"""Personal bearer tokens: issuing one (shared by `ssc tokens create` and the API) and
`ssc tokens create` itself, which makes a person with a role in a tenant and shows the token once.

Two kinds of token (docs/api.md, Credentials):
- a bearer token acts as its owner, until it expires or is revoked;
- an enrolment token is one-time and short-lived: the first credential of an account made through
  the API. It acts as nobody (no role) and serves only to obtain its owner's own bearer token with
  `issueToken`, which revokes it. Nobody may obtain a usable credential of another person: the
  administrator who hands it over could redeem it first, which is why accounts linked through
  creation may not approve each other's proposals (app/ops/grants/approval.py).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.errors import DomainError
from app.domain.regions import parse_tenant_path
from app.domain.roles import check_role_level, parse_role
from app.store.audit import append_event
from app.store.crypto import secret_hash
from app.store.tables import PersonalToken, Principal, RoleAssignment, Tenant

TOKEN_PREFIX = "ssc_pt_"
# Shown in lists and audit events to tell tokens apart: 8 characters after the fixed prefix are 48 of
# the token's 256 random bits, enough to name one token among many without weakening it.
SHOWN_CHARS = len(TOKEN_PREFIX) + 8
PRINCIPAL_NAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
MIN_DAYS, MAX_DAYS = 1, 366


@dataclass(frozen=True)
class IssuedToken:
    principal_id: int
    principal_name: str
    token: str  # the only time the clear token exists; never stored or logged
    prefix: str  # what lists and audit events show of it
    expires_at: datetime
    one_time: bool = False
    token_id: int = 0


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def check_principal_name(name: str) -> str:
    if not PRINCIPAL_NAME.match(name):
        raise DomainError(
            "BAD_NAME", "a principal name is 2-64 of a-z, 0-9, '.', '_', '@', '-'", field="name"
        )
    return name


def check_token_days(days: int) -> int:
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise DomainError("BAD_EXPIRY", f"a token lives from {MIN_DAYS} to {MAX_DAYS} days", field="days")
    return days


async def add_token(
    session: AsyncSession, principal: Principal, expires_at: datetime, *, one_time: bool = False
) -> IssuedToken:
    """A new token for `principal` in the caller's transaction; only its SHA-256 is stored."""
    token = new_secret(TOKEN_PREFIX)
    row = PersonalToken(
        principal_id=principal.id,
        token_hash=secret_hash(token),
        prefix=token[:SHOWN_CHARS],
        expires_at=expires_at,
        one_time=one_time,
    )
    session.add(row)
    await session.flush()
    return IssuedToken(principal.id, principal.name, token, token[:SHOWN_CHARS], expires_at, one_time, row.id)


async def create_principal_with_token(
    sessions: async_sessionmaker[AsyncSession],
    *,
    tenant_path: str,
    role: str,
    name: str | None = None,
    display_name: str | None = None,
    days: int = 90,
    actor: str = "cli:tokens-create",
) -> IssuedToken:
    parsed_role = parse_role(role)
    path = parse_tenant_path(tenant_path)
    check_role_level(parsed_role, path.level)
    check_token_days(days)
    name = check_principal_name(name or f"{parsed_role.value}.{path.code}.{secrets.token_hex(3)}")
    async with sessions() as session, session.begin():
        tenant = (await session.exec(select(Tenant).where(Tenant.path == path.path))).first()
        if tenant is None:
            raise DomainError(
                "UNKNOWN_TENANT", f"no tenant {path.path}; run `ssc tenants apply` first", field="tenant"
            )
        if (await session.exec(select(Principal.id).where(Principal.name == name))).first() is not None:
            raise DomainError("DUPLICATE_NAME", f"a principal named {name!r} already exists", field="name")
        principal = Principal(name=name, display_name=display_name or name)
        session.add(principal)
        await session.flush()
        session.add(RoleAssignment(principal_id=principal.id, tenant_id=tenant.id, role=parsed_role.value))
        issued = await add_token(session, principal, datetime.now(UTC) + timedelta(days=days))
        await append_event(
            session,
            tenant=path.path,
            actor=actor,
            action="principal.create",
            target_type="principal",
            target_id=name,
            detail={
                "role": parsed_role.value,
                # The server's operator made this account and its token on the server itself: the
                # bootstrap, outside the API's rule that nobody mints another person's credential.
                "bootstrap": True,
                "token_id": issued.token_id,
                "token_prefix": issued.prefix,
                "expires_at": issued.expires_at.isoformat(),
            },
        )
    return issued
