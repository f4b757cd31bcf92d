"""Partner API keys: bound to one outlet, shown once, stored as SHA-256, with expiry and revocation.

Partner systems (bank cores, hospital and pharmacy systems, terminals, the 12333 desk) send
`X-Api-Key: ssc_pk_...` and act as that one outlet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.ops.errors import OpsError
from app.ops.tokens import new_secret
from app.store.audit import append_event
from app.store.crypto import secret_hash
from app.store.tables import Outlet, PartnerKey, Tenant

KEY_PREFIX = "ssc_pk_"
SHOWN_CHARS = len(KEY_PREFIX) + 8
MAX_DAYS = 731


@dataclass(frozen=True)
class IssuedKey:
    key_id: int
    outlet_id: str
    key: str  # the only time the clear key exists; never stored or logged
    prefix: str
    expires_at: datetime


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


async def create_partner_key(
    session: AsyncSession,
    outlet_id: str,
    *,
    days: int,
    actor: str,
    rate_limit: str | None = None,
    request_id: str | None = None,
) -> IssuedKey:
    """Issue a key for an open outlet inside the caller's transaction (authorization is the caller's)."""
    if not 1 <= days <= MAX_DAYS:
        raise OpsError("BAD_INPUT", f"a key lives from 1 to {MAX_DAYS} days", field="days")
    row = (
        await session.exec(
            select(Outlet, Tenant.path)
            .join(Tenant, Tenant.id == Outlet.tenant_id)
            .where(Outlet.id == outlet_id)
        )
    ).first()
    if row is None or row[0].status != "open":
        raise OpsError("BAD_INPUT", f"no open outlet {outlet_id}", field="outlet")
    outlet, tenant_path = row
    key = new_secret(KEY_PREFIX)
    expires_at = datetime.now(UTC) + timedelta(days=days)
    stored = PartnerKey(
        outlet_id=outlet.id,
        key_hash=secret_hash(key),
        prefix=key[:SHOWN_CHARS],
        rate_limit=rate_limit,
        expires_at=expires_at,
    )
    session.add(stored)
    await session.flush()
    await append_event(
        session,
        tenant=tenant_path,
        actor=actor,
        action="partner_key.create",
        target_type="outlet",
        target_id=outlet.id,
        request_id=request_id,
        detail={"key_id": stored.id, "prefix": stored.prefix, "expires_at": expires_at.isoformat()},
    )
    return IssuedKey(stored.id, outlet.id, key, stored.prefix, expires_at)


async def authenticate_partner(session: AsyncSession, key: str | None) -> PartnerCaller:
    """The outlet behind an API key; any problem is UNAUTHENTICATED without saying which."""
    refused = OpsError("UNAUTHENTICATED", "send X-Api-Key with a valid partner key")
    if not key or not key.startswith(KEY_PREFIX):
        raise refused
    row = (
        await session.exec(
            select(PartnerKey, Outlet, Tenant.path)
            .join(Outlet, Outlet.id == PartnerKey.outlet_id)
            .join(Tenant, Tenant.id == Outlet.tenant_id)
            .where(PartnerKey.key_hash == secret_hash(key))
        )
    ).first()
    if row is None:
        raise refused
    stored, outlet, tenant_path = row
    if (
        stored.revoked_at is not None
        or outlet.status != "open"
        or (stored.expires_at is not None and stored.expires_at <= datetime.now(UTC))
    ):
        raise refused
    return PartnerCaller(stored.id, outlet.id, outlet.kind, tenant_path, outlet.bank_code, stored.rate_limit)
