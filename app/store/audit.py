"""Appending audit events to the per-tenant hash chain, inside the caller's transaction."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.store.tables import AuditEvent

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def event_body(event: AuditEvent) -> dict[str, Any]:
    """The hashed content of an event: everything but its own hash."""
    return {
        "tenant": event.tenant,
        "seq": event.seq,
        "at": event.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": event.actor,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "decision": event.decision,
        "reason": event.reason,
        "detail": orjson.loads(event.detail),
        "request_id": event.request_id,
    }


def chain_hash(prev_hash: str, body: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical_json(body)).hexdigest()


async def _lock_chain(session: AsyncSession, tenant: str) -> None:
    # Two writers must not take the same seq. SQLite already serialises writers; PostgreSQL needs a
    # transaction-level advisory lock per chain, released at commit.
    if session.bind.dialect.name == "postgresql":
        await session.exec(
            text("select pg_advisory_xact_lock(hashtext(:k))"), params={"k": f"audit:{tenant}"}
        )


async def append_event(
    session: AsyncSession,
    *,
    tenant: str,
    actor: str,
    action: str,
    target_type: str,
    target_id: str,
    detail: dict[str, Any] | None = None,
    decision: str | None = None,
    reason: str | None = None,
    request_id: str | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Add one event to `tenant`'s chain; the caller commits it together with the change."""
    await _lock_chain(session, tenant)
    last = (
        await session.exec(
            select(AuditEvent.seq, AuditEvent.hash)
            .where(AuditEvent.tenant == tenant)
            .order_by(AuditEvent.seq.desc())
            .limit(1)
        )
    ).first()
    seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
    event = AuditEvent(
        tenant=tenant,
        seq=seq,
        prev_hash=prev_hash,
        hash="",
        at=at or datetime.now(UTC),
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        decision=decision,
        reason=reason,
        detail=canonical_json(detail or {}).decode(),
        request_id=request_id,
    )
    event.hash = chain_hash(prev_hash, event_body(event))
    session.add(event)
    await session.flush()
    return event


async def event_count(session: AsyncSession, tenant: str | None = None) -> int:
    query = select(func.count()).select_from(AuditEvent)
    if tenant is not None:
        query = query.where(AuditEvent.tenant == tenant)
    return (await session.exec(query)).one()
