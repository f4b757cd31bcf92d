"""Audit events (one hash chain per tenant) and the policy change log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.store.tables.common import UTCDateTime, utcnow

# 64-bit ids on PostgreSQL; SQLite only autoincrements an INTEGER PRIMARY KEY (the rowid).
BIG_ID = BigInteger().with_variant(Integer, "sqlite")


class AuditEvent(SQLModel, table=True):
    """Immutable record of a change or a decision; `hash = sha256(prev_hash + canonical_json(event))`."""

    __tablename__ = "audit_event"
    __table_args__ = (
        UniqueConstraint("tenant", "seq", name="uq_audit_tenant_seq"),
        Index("ix_audit_at", "at"),
        Index("ix_audit_target", "target_type", "target_id"),
    )

    id: int | None = Field(default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True))
    tenant: str = Field(max_length=64)
    seq: int
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    actor: str = Field(max_length=96)
    # The credential that acted: "token:<id>" for a person, "key:<id>" for a partner system; NULL for
    # the server's own commands (ssc …) and for events written before it was recorded.
    credential: str | None = Field(default=None, max_length=32)
    action: str = Field(max_length=64)
    target_type: str = Field(max_length=32)
    target_id: str = Field(max_length=96)
    decision: str | None = Field(default=None, max_length=8)
    reason: str | None = Field(default=None, max_length=32)
    # Canonical JSON of before/after/explanation; masked, never a full ID or bank card number.
    detail: str = Field(sa_column=Column(Text, nullable=False))
    request_id: str | None = Field(default=None, max_length=64)


class PolicyLine(SQLModel, table=True):
    """The current business-plane policy: the projection of grants, outlets and blocks."""

    __tablename__ = "policy_line"
    __table_args__ = (Index("ix_policy_line_source", "source", "source_id"),)

    id: int | None = Field(default=None, primary_key=True)
    ptype: str = Field(max_length=4)
    v0: str = Field(max_length=96)
    v1: str = Field(max_length=96)
    v2: str = Field(max_length=96)
    v3: str | None = Field(default=None, max_length=32)
    v4: str | None = Field(default=None, max_length=32)
    v5: str | None = Field(default=None, max_length=32)
    v6: str | None = Field(default=None, max_length=32)
    # What the line projects: "grant", "outlet" (its kind group) or "block", and that row's id.
    source: str = Field(max_length=16)
    source_id: str = Field(max_length=64)


class PolicyChange(SQLModel, table=True):
    """Append-only log of policy deltas that every worker tails (ids become visible in id order)."""

    __tablename__ = "policy_change"

    id: int | None = Field(default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True))
    op: str = Field(max_length=8)
    ptype: str = Field(max_length=4)
    rule: str = Field(sa_column=Column(Text, nullable=False))
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
