"""Partner API keys: bound to one outlet, shown once, stored as SHA-256, with expiry and revocation.

Partner systems (bank cores, hospital and pharmacy systems, terminals, the 12333 desk) send
`X-Api-Key: ssc_pk_...` and act as that one outlet.

A worker remembers a verified key for `partner_key_cache_seconds` (1 s by default) so most calls skip
the database. That is the bound on how late a revocation, an expiry or an outlet's closing reaches
every worker; the worker that revokes a key forgets it at once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from limits import RateLimitItem
from sqlalchemy import bindparam
from sqlmodel import func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.ops.auth import PartnerCaller
from app.ops.errors import OpsError, not_found
from app.ops.inputs import reason_text
from app.ops.partner_keys.rate_limit import parse_limit
from app.ops.principals.credentials import new_secret
from app.settings import get_settings
from app.store.audit import append_event
from app.store.crypto import secret_hash
from app.store.point_reads import PointReader
from app.store.tables import Outlet, PartnerKey, Tenant

KEY_PREFIX = "ssc_pk_"
SHOWN_CHARS = len(KEY_PREFIX) + 8
MAX_DAYS = 731
# Verified keys a worker remembers; past this the oldest are dropped (they are simply checked again).
CACHE_SIZE = 10_000


@dataclass(frozen=True)
class KeyView:
    row: PartnerKey
    tenant_path: str


@dataclass(frozen=True)
class IssuedKey:
    key_id: int
    outlet_id: str
    key: str  # the only time the clear key exists; never stored or logged
    prefix: str
    expires_at: datetime
    view: KeyView


async def create_partner_key(
    session: AsyncSession,
    outlet_id: str,
    *,
    days: int,
    actor: str,
    credential: str | None = None,
    rate_limit: str | None = None,
    created_by: int | None = None,
    request_id: str | None = None,
    max_rate_limit: str | None = None,
    max_keys: int | None = None,
) -> IssuedKey:
    """Issue a key for an open outlet inside the caller's transaction (authorization is the caller's).

    `max_rate_limit` is the highest `rate_limit` allowed (default: the setting partner_rate_limit_max);
    a benchmark that must not be limited passes its own. `max_keys` is how many live keys the
    outlet may hold (default: the setting partner_max_keys_per_outlet)."""
    if not 1 <= days <= MAX_DAYS:
        raise OpsError("BAD_INPUT", f"a key lives from 1 to {MAX_DAYS} days", field="days")
    if rate_limit is not None:
        rate_limit = rate_limit.strip()
        cap = get_settings().partner_rate_limit_max if max_rate_limit is None else max_rate_limit
        _check_rate_cap(parse_limit(rate_limit), cap)
        if len(rate_limit) > 32:
            raise OpsError("BAD_INPUT", "write the rate limit in at most 32 characters", field="rateLimit")
    row = (
        await session.exec(
            select(Outlet, Tenant.path)
            .join(Tenant, Tenant.id == Outlet.tenant_id)
            .where(Outlet.id == outlet_id)
            .with_for_update(of=Outlet)  # two concurrent issues must not both see room for one more
        )
    ).first()
    if row is None or row[0].status != "open":
        raise OpsError("BAD_INPUT", f"no open outlet {outlet_id}", field="outlet")
    outlet, tenant_path = row
    now = datetime.now(UTC)
    live = (
        await session.exec(
            select(func.count())
            .select_from(PartnerKey)
            .where(
                PartnerKey.outlet_id == outlet.id,
                PartnerKey.revoked_at.is_(None),
                or_(PartnerKey.expires_at.is_(None), PartnerKey.expires_at > now),
            )
        )
    ).one()
    limit = get_settings().partner_max_keys_per_outlet if max_keys is None else max_keys
    if live >= limit:
        raise OpsError(
            "CONFLICT",
            f"outlet {outlet.id} already holds {live} live keys, the most it may hold; revoke one first",
            field="outletId",
            liveKeys=live,
        )
    key = new_secret(KEY_PREFIX)
    expires_at = now + timedelta(days=days)
    stored = PartnerKey(
        outlet_id=outlet.id,
        key_hash=secret_hash(key),
        prefix=key[:SHOWN_CHARS],
        rate_limit=rate_limit,
        expires_at=expires_at,
        created_by=created_by,
    )
    session.add(stored)
    await session.flush()
    await append_event(
        session,
        tenant=tenant_path,
        actor=actor,
        credential=credential,
        action="partner_key.create",
        target_type="outlet",
        target_id=outlet.id,
        request_id=request_id,
        detail={"key_id": stored.id, "prefix": stored.prefix, "expires_at": expires_at.isoformat()},
    )
    return IssuedKey(stored.id, outlet.id, key, stored.prefix, expires_at, KeyView(stored, tenant_path))


def _check_rate_cap(limit: RateLimitItem, cap_text: str) -> None:
    """BAD_INPUT when `limit` allows more calls per second than the cap (60000/minute = 1000/second)."""
    cap = parse_limit(cap_text)
    # a/p > c/q as a·q > c·p: whole numbers, no rounding at the boundary.
    if limit.amount * cap.get_expiry() > cap.amount * limit.get_expiry():
        raise OpsError(
            "BAD_INPUT",
            f"a key's rate limit may not exceed the platform's cap of {cap_text}",
            field="rateLimit",
        )


_KEY_BY_HASH = (
    select(
        PartnerKey.id,
        Outlet.id,
        Outlet.kind,
        Tenant.path,
        Outlet.bank_code,
        PartnerKey.rate_limit,
        PartnerKey.revoked_at,
        PartnerKey.expires_at,
        Outlet.status,
    )
    .join(Outlet, Outlet.id == PartnerKey.outlet_id)
    .join(Tenant, Tenant.id == Outlet.tenant_id)
    .where(PartnerKey.key_hash == bindparam("digest"))
)


async def authenticate_partner(
    reader: PointReader, key: str | None, *, trust_seconds: float | None = None
) -> PartnerCaller:
    """The outlet behind an API key; any problem is UNAUTHENTICATED without saying which.

    A key verified less than `trust_seconds` ago (the app's partner_key_cache_seconds; the
    environment's setting when not given) is answered without touching the database.
    """
    refused = OpsError("UNAUTHENTICATED", "send X-Api-Key with a valid partner key")
    if not key or not key.startswith(KEY_PREFIX):
        raise refused
    digest = secret_hash(key)
    if (caller := _verified.get(digest)) is not None:
        return caller
    rows = await reader.all(_KEY_BY_HASH, {"digest": digest})
    if not rows:
        raise refused
    *who, revoked_at, expires_at, outlet_status = rows[0]
    now = datetime.now(UTC)
    if revoked_at is not None or outlet_status != "open" or (expires_at is not None and expires_at <= now):
        raise refused
    caller = PartnerCaller(*who)
    trust = get_settings().partner_key_cache_seconds if trust_seconds is None else trust_seconds
    if expires_at is not None:
        trust = min(trust, (expires_at - now).total_seconds())
    _verified.put(digest, caller, trust)
    return caller


class _VerifiedKeys:
    """SHA-256 of a key → the caller it proved, until a deadline; bounded, oldest dropped first.

    Worker-wide and shared by the server's threads (tests run one next to the test loop), hence the lock.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[str, tuple[PartnerCaller, float]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, digest: str) -> PartnerCaller | None:
        with self.lock:
            entry = self.entries.get(digest)
            if entry is None:
                return None
            if entry[1] <= time.monotonic():
                del self.entries[digest]
                return None
            return entry[0]

    def put(self, digest: str, caller: PartnerCaller, seconds: float) -> None:
        if seconds <= 0:
            return
        with self.lock:
            self.entries.pop(digest, None)
            self.entries[digest] = (caller, time.monotonic() + seconds)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)

    def forget(self, key_ids: set[int]) -> None:
        with self.lock:
            for digest in [d for d, (caller, _) in self.entries.items() if caller.key_id in key_ids]:
                del self.entries[digest]


_verified = _VerifiedKeys(CACHE_SIZE)


def forget_keys(key_ids: set[int]) -> None:
    """Stop trusting these keys in this worker at once (other workers stop within the cache time)."""
    _verified.forget(key_ids)


async def revoke_key(
    session: AsyncSession,
    *,
    key_id: int | None,
    prefix: str | None,
    reason: str,
    actor: str,
    credential: str | None = None,
    request_id: str | None = None,
) -> KeyView:
    """Revoke one key inside the caller's transaction (authorization is the caller's)."""
    reason = check_revocation(key_id, prefix, reason)
    found = await find_key(session, key_id, prefix, lock=True)
    if found is None:
        raise not_found("partner key", str(key_id) if key_id is not None else str(prefix))
    path, row = found
    if row.revoked_at is not None:
        raise OpsError("CONFLICT", f"partner key {row.prefix}… was already revoked")
    row.revoked_at = datetime.now(UTC)
    await append_event(
        session,
        tenant=path,
        actor=actor,
        credential=credential,
        action="partner_key.revoke",
        target_type="outlet",
        target_id=row.outlet_id,
        request_id=request_id,
        detail={"key_id": row.id, "prefix": row.prefix, "reason": reason},
    )
    return KeyView(row, path)


def check_revocation(key_id: int | None, prefix: str | None, reason: str) -> str:
    if (key_id is None) == (prefix is None):
        raise OpsError("BAD_INPUT", "name the key by exactly one of its id and its prefix", field="id")
    if prefix is not None and not (prefix.startswith(KEY_PREFIX) and len(prefix) == SHOWN_CHARS):
        raise OpsError(
            "BAD_INPUT",
            f"a key prefix is the first {SHOWN_CHARS} characters, e.g. ssc_pk_AbC123xY",
            field="prefix",
        )
    return reason_text(reason)


async def find_key(
    session: AsyncSession, key_id: int | None, prefix: str | None, *, lock: bool = False
) -> tuple[str, PartnerKey] | None:
    """The key and its outlet's department; CONFLICT if a prefix names several keys."""
    query = (
        select(Tenant.path, PartnerKey)
        .join(Outlet, Outlet.id == PartnerKey.outlet_id)
        .join(Tenant, Tenant.id == Outlet.tenant_id)
        .where(PartnerKey.id == key_id if key_id is not None else PartnerKey.prefix == prefix)
        .limit(2)
    )
    if lock:
        query = query.with_for_update(of=PartnerKey)
    rows = (await session.exec(query)).all()
    if len(rows) > 1:
        raise OpsError("CONFLICT", f"several keys start with {prefix}; name the key by its id")
    return (rows[0][0], rows[0][1]) if rows else None
