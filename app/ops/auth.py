"""Who is calling: bearer tokens for people (SHA-256 lookup), and the admin-plane check."""

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
    assignments: tuple[tuple[str, str], ...]
    guard: AdminGuard = field(compare=False, repr=False)

    @property
    def label(self) -> str:
        return f"principal:{self.name}"


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
    assignments = (
        await session.exec(
            select(RoleAssignment.role, Tenant.path)
            .join(Tenant, Tenant.id == RoleAssignment.tenant_id)
            .where(RoleAssignment.principal_id == principal.id)
        )
    ).all()
    pairs = tuple((role, path) for role, path in assignments)
    return Actor(
        principal.id,
        principal.name,
        principal.created_by,
        stored.id,
        pairs,
        AdminGuard(f"principal:{principal.name}", pairs),
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
    await record_denial(
        sessions,
        actor,
        f"{obj}.{act}",
        obj,
        target_id or tenant_path,
        tenant_path,
        request_id=request_id,
        why=f"no role allows {act} on {obj} in {tenant_path}",
    )
    raise OpsError(code, f"not allowed to {act} {obj} in {tenant_path}")


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
) -> None:
    # The chain of the tenant asked about, if it exists; otherwise the national chain, so a probe of
    # a non-existent tenant is recorded too (DESIGN.md §7: the caller cannot tell the difference).
    async with sessions() as session, session.begin():
        known = (await session.exec(select(Tenant.id).where(Tenant.path == tenant_path))).first()
        await append_event(
            session,
            tenant=tenant_path if known else "cn",
            actor=actor.label,
            action=action,
            target_type=target_type,
            target_id=target_id[:96],
            decision="deny",
            request_id=request_id,
            detail={"why": why, "tenant_exists": known is not None},
        )
