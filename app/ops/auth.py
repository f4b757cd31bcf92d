"""Who is calling: a person (`Actor`, by their bearer token, with the admin-plane check) or a partner
system (`PartnerCaller`, the outlet its API key is bound to; the key itself is checked in
app/ops/partner_keys/keys.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.admin import AdminGuard
from app.ops.errors import OpsError
from app.store.audit import append_event
from app.store.crypto import secret_hash
from app.store.tables import PersonalToken, Principal, RoleAssignment, Tenant


@dataclass(frozen=True)
class Actor:
    principal_id: int
    name: str
    created_by: int | None
    token_id: int
    # Roles held, as (role, tenant path); none while acting with a one-time enrolment token.
    assignments: tuple[tuple[str, str], ...]
    guard: AdminGuard = field(compare=False, repr=False)
    # When the acting token expires (a token it issues may not outlive it) and whether it is an
    # enrolment token, which may only obtain its owner's own token (app/ops/principals/credentials.py).
    token_expires_at: datetime | None = None
    enrolling: bool = False
    # Acting through a console session (app/ops/principals/console_sessions.py) instead of a token.
    session_id: int | None = None

    @property
    def label(self) -> str:
        return f"principal:{self.name}"

    @property
    def credential(self) -> str:
        """The credential that acted, named in every audit event of the request (never the token)."""
        return f"session:{self.session_id}" if self.session_id is not None else f"token:{self.token_id}"


@dataclass(frozen=True)
class PartnerCaller:
    """The outlet a partner system acts as."""

    key_id: int
    outlet_id: str
    outlet_kind: str
    tenant_path: str
    bank_code: str | None
    rate_limit: str | None

    @property
    def label(self) -> str:
        return f"outlet:{self.outlet_id}"

    @property
    def credential(self) -> str:
        """The key that acted, named in the audit events of its calls (never the key itself)."""
        return f"key:{self.key_id}"


def top_most(paths) -> str | None:
    """The highest of some tenant paths (fewest levels, then by code), or None when there are none."""
    return min(paths, key=lambda p: (p.count("/"), p), default=None)


def home_tenant(actor: Actor) -> str:
    """The person's own department: the top-most tenant where they hold a role ("cn" if none)."""
    return top_most(actor.guard.scopes()) or "cn"


def area_top(actor: Actor, obj: str) -> str | None:
    """The top of the area where the person may read `obj` (None when nowhere): where a page or a
    report about it opens when no department is asked."""
    return top_most(s for s in actor.guard.scopes() if actor.guard.can("read", obj, s))


async def roles_held(session: AsyncSession, principal_id: int) -> tuple[tuple[str, str], ...]:
    """The (role, tenant path) pairs a person holds now: what every credential of theirs acts with."""
    rows = await session.exec(
        select(RoleAssignment.role, Tenant.path)
        .join(Tenant, Tenant.id == RoleAssignment.tenant_id)
        .where(RoleAssignment.principal_id == principal_id)
    )
    return tuple((role, path) for role, path in rows.all())


async def authenticate(session: AsyncSession, token: str | None) -> Actor:
    """The person behind a bearer token; any problem is UNAUTHENTICATED without saying which."""
    if not token:
        raise OpsError("UNAUTHENTICATED", "send Authorization: Bearer <token>")
    row = (
        await session.exec(
            select(PersonalToken, Principal)
            .join(Principal, Principal.id == PersonalToken.principal_id)
            .where(PersonalToken.token_hash == secret_hash(token))
        )
    ).first()
    now = datetime.now(UTC)
    if row is None:
        raise OpsError("UNAUTHENTICATED", "unknown, expired or revoked token")
    stored, principal = row
    if (
        not principal.active
        or stored.revoked_at is not None
        or (stored.expires_at and stored.expires_at <= now)
    ):
        raise OpsError("UNAUTHENTICATED", "unknown, expired or revoked token")
    pairs = () if stored.one_time else await roles_held(session, principal.id)
    return Actor(
        principal.id,
        principal.name,
        principal.created_by,
        stored.id,
        pairs,
        AdminGuard(f"principal:{principal.name}", pairs),
        token_expires_at=stored.expires_at,
        enrolling=stored.one_time,
    )


async def authorize(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    act: str,
    obj: str,
    tenant_path: str,
    *,
    target_id: str = "",
    request_id: str | None = None,
    code: str = "FORBIDDEN",
) -> None:
    """Refuse unless the admin plane allows it; a refusal is audited in a transaction of its own."""
    if actor.guard.can(act, obj, tenant_path):
        return
    raise await deny(
        sessions,
        actor,
        f"{obj}.{act}",
        obj,
        target_id or tenant_path,
        tenant_path,
        request_id=request_id,
        why=f"no role allows {act} on {obj} in {tenant_path}",
        code=code,
        message=f"not allowed to {act} {obj} in {tenant_path}",
    )


async def deny(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str,
    tenant_path: str,
    *,
    request_id: str | None,
    why: str,
    code: str = "FORBIDDEN",
    message: str | None = None,
) -> OpsError:
    """Record a refusal (see `record_denial`) and return the error to raise, marked as audited.

    `message` is what the caller reads (default: `why`); `why` stays in the audit trail, so it may
    say more than the caller may learn (which tenant holds an object they may not see)."""
    await record_denial(
        sessions, actor, action, target_type, target_id, tenant_path, request_id=request_id, why=why
    )
    error = OpsError(code, message or why)
    error.audited = True
    return error


async def record_denial(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str,
    tenant_path: str,
    *,
    request_id: str | None,
    why: str,
    detail: dict | None = None,
) -> None:
    # The chain of the tenant asked about, if it exists; otherwise the national chain, so a probe of
    # a non-existent tenant is recorded too (DESIGN.md §7: the caller cannot tell the difference).
    async with sessions() as session, session.begin():
        known = (await session.exec(select(Tenant.id).where(Tenant.path == tenant_path))).first()
        await append_event(
            session,
            tenant=tenant_path if known else "cn",
            actor=actor.label,
            credential=actor.credential,
            action=action,
            target_type=target_type,
            target_id=target_id[:96],
            decision="deny",
            request_id=request_id,
            detail={"why": why, "tenant_exists": known is not None, **(detail or {})},
        )
