"""Appending audit events to the per-tenant hash chain, inside the caller's transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, insert, text
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.audit_chain import GENESIS_HASH, canonical_json, chain_hash, event_time_text, hashed_content
from app.store.db import take_write_lock
from app.store.tables import AuditEvent


def event_content(event: AuditEvent) -> bytes:
    """What a stored event's hash covers (app/domain/audit_chain.py)."""
    fields = event.model_dump()
    fields["at"] = event_time_text(event.at)
    return hashed_content(fields, event.detail.encode())


def chain_lock_key(tenant: str) -> str:
    """The PostgreSQL advisory lock that serializes appends to `tenant`'s chain (hashed by hashtext)."""
    return f"audit:{tenant}"


async def _lock_chain(session: AsyncSession, tenant: str) -> None:
    # Two writers must not take the same seq: PostgreSQL takes a transaction-level advisory lock per
    # chain (released at commit); SQLite has one writer, which this transaction must be before it
    # reads the head.
    if session.bind.dialect.name == "postgresql":
        await session.exec(
            text("select pg_advisory_xact_lock(hashtext(:k))"), params={"k": chain_lock_key(tenant)}
        )
    else:
        await take_write_lock(session)


CHAIN_HEAD = (
    select(AuditEvent.seq, AuditEvent.hash)
    .where(AuditEvent.tenant == bindparam("tenant"))
    .order_by(AuditEvent.seq.desc())
    .limit(1)
)


async def _chain_head(session: AsyncSession, tenant: str) -> tuple[int, str]:
    """(last seq, last hash) of `tenant`'s chain, after taking its lock."""
    await _lock_chain(session, tenant)
    last = (await session.exec(CHAIN_HEAD, params={"tenant": tenant})).first()
    return (last[0], last[1]) if last else (0, GENESIS_HASH)


def event_row(
    tenant: str,
    head: tuple[int, str],
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: str,
    credential: str | None = None,
    detail: dict[str, Any] | None = None,
    decision: str | None = None,
    reason: str | None = None,
    request_id: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """The column values of the event that follows `head` (last seq, last hash) in `tenant`'s chain.

    The detail is stored as canonical JSON and hashed as stored, so `event_content` of the stored
    row hashes the same.
    """
    seq, prev_hash = head
    stored_detail = canonical_json(detail or {})
    row = {
        "tenant": tenant,
        "seq": seq + 1,
        "prev_hash": prev_hash,
        "hash": "",
        "at": at or datetime.now(UTC),
        "actor": actor,
        "credential": credential,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "decision": decision,
        "reason": reason,
        "detail": stored_detail.decode(),
        "request_id": request_id,
    }
    hashed = {**row, "at": event_time_text(row["at"])}
    row["hash"] = chain_hash(prev_hash, hashed_content(hashed, stored_detail))
    return row


async def append_event(session: AsyncSession, *, tenant: str, **fields: Any) -> AuditEvent:
    """Add one event to `tenant`'s chain; the caller commits it together with the change.

    `fields`: actor, action, target_type, target_id and optionally credential, detail, decision,
    reason, request_id, at.
    """
    event = AuditEvent(**event_row(tenant, await _chain_head(session, tenant), **fields))
    session.add(event)
    await session.flush()
    return event


async def append_events(session: AsyncSession, events: list[tuple[str, dict[str, Any]]]) -> int:
    """Append many `(tenant, fields)` events at once, in order, each chain locked and read once,
    and inserted with one executemany (ten thousand single appends take seconds)."""
    heads: dict[str, tuple[int, str]] = {}
    rows = []
    for tenant, fields in events:
        if tenant not in heads:
            heads[tenant] = await _chain_head(session, tenant)
        row = event_row(tenant, heads[tenant], **fields)
        heads[tenant] = (row["seq"], row["hash"])
        rows.append(row)
    if rows:
        await session.exec(insert(AuditEvent), params=rows)
    return len(rows)
