"""Appending audit events to the per-tenant hash chain, inside the caller's transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import bindparam, insert, text
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.store.db import take_write_lock
from app.store.tables import AuditEvent

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _body(values: Mapping[str, Any], detail: Any) -> dict[str, Any]:
    body = {
        "tenant": values["tenant"],
        "seq": values["seq"],
        # 2026-11-25T03:00:00.123456Z (as strftime's %Y-%m-%dT%H:%M:%S.%fZ did, at half the cost)
        "at": values["at"].astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z",
        "actor": values["actor"],
        "action": values["action"],
        "target_type": values["target_type"],
        "target_id": values["target_id"],
        "decision": values["decision"],
        "reason": values["reason"],
        "detail": detail,
        "request_id": values["request_id"],
    }
    # Hashed only when present, so the events written before the column existed verify unchanged.
    if values.get("credential") is not None:
        body["credential"] = values["credential"]
    return body


def event_body(event: AuditEvent) -> dict[str, Any]:
    """The hashed content of a stored event: everything but its own hash."""
    return _body(event.model_dump(), orjson.loads(event.detail))


def chain_hash(prev_hash: str, body: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical_json(body)).hexdigest()


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

    The hash covers the detail as given; it is stored as canonical JSON, which reads back to the
    same canonical bytes, so `event_body` of the stored row hashes the same.
    """
    seq, prev_hash = head
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
        "detail": canonical_json(detail or {}).decode(),
        "request_id": request_id,
    }
    row["hash"] = chain_hash(prev_hash, _body(row, detail or {}))
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
