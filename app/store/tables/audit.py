"""Audit events (one hash chain per tenant) and the policy change log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, Text, UniqueConstraint
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
        # When a credential last acted (the UNUSED_CREDENTIAL anomaly), from the index alone.
        Index("ix_audit_credential_at", "credential", "at"),
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


class AuditCheckpoint(SQLModel, table=True):
    """A signed statement of every chain's head at one time (app/ops/compliance/checkpoints.py): a
    writer to the database alone cannot rewrite the events it covers without the signature failing."""

    __tablename__ = "audit_checkpoint"

    id: int | None = Field(default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True))
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    # "scheduled" (the workers' timer), "manual" (`ssc audit checkpoint`) or "archive" (the boundary
    # `ssc audit archive` leaves).
    kind: str = Field(max_length=16)
    # The highest audit_event id written when the heads were read: the timer signs again only after it.
    through_event: int = Field(sa_column=Column(BigInteger, nullable=False))
    # Canonical JSON list of {tenant, seq, hash, at}, exactly as signed.
    heads: str = Field(sa_column=Column(Text, nullable=False))
    key: str = Field(max_length=80)  # the signing key's fingerprint
    signature: str = Field(max_length=128)


class AuditVerification(SQLModel, table=True):
    """One run of `ssc audit verify` over the database: what it covered and what it found, so that
    the console can show auditors when the trail was last verified and with what result."""

    __tablename__ = "audit_verification"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    scope: str = Field(max_length=64)  # the tenant whose subtree was verified; "cn" for all of it
    events: int = Field(sa_column=Column(BigInteger, nullable=False))
    chains: int
    seconds: float
    ok: bool
    breaks: int
    problems: int
    checkpoint_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    # The first break or problem, as printed (tenant, seq, what failed; never an event's content).
    first_finding: str | None = Field(default=None, max_length=512)


class AuditArchive(SQLModel, table=True):
    """Where a tenant's chain goes on after `ssc audit archive` moved its older events to a file: the
    last archived event, signed in an archive checkpoint, which the first remaining event must name."""

    __tablename__ = "audit_archive"
    __table_args__ = (UniqueConstraint("tenant", "seq", name="uq_audit_archive_tenant_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=64)
    seq: int
    hash: str = Field(max_length=64)
    checkpoint_id: int = Field(sa_column=Column(BIG_ID, ForeignKey("audit_checkpoint.id"), nullable=False))
    file: str = Field(max_length=255)
    events: int
    archived_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class PolicyLine(SQLModel, table=True):
    """The current business-plane policy: the projection of grants, outlets and blocks.

    Each line says when it was added and by whom; when it is removed it moves to `policy_line_ended`
    with the time and the remover, so the policy as it stood at any past time is the lines added by
    then and not yet removed (app/ops/compliance/history.py)."""

    __tablename__ = "policy_line"
    __table_args__ = (
        Index("ix_policy_line_source", "source", "source_id"),
        # The compliance queries, answered from the index alone: a service's lines by domain and
        # effect at a time (p, s), a tenant's outlets (g); and an outlet's group by name (g).
        Index("ix_policy_line_history", "ptype", "v2", "v1", "v3", "added_at", "v0", "v4", "v5"),
        Index("ix_policy_line_ptype_v0", "ptype", "v0"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ptype: str = Field(max_length=4)
    v0: str = Field(max_length=96)
    v1: str = Field(max_length=96)
    v2: str = Field(max_length=96)
    v3: str | None = Field(default=None, max_length=32)
    v4: str | None = Field(default=None, max_length=32)
    v5: str | None = Field(default=None, max_length=32)
    v6: str | None = Field(default=None, max_length=32)
    # What the line projects: "grant", "outlet" (its kind group), "block" or "ceiling", and that row's id.
    source: str = Field(max_length=16)
    source_id: str = Field(max_length=64)
    added_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, default=utcnow)
    )
    # The actor of the change that added it (as in its audit event); None: added before history was
    # kept (migration 0006 dates those lines from the change log) or through the Casbin adapter.
    added_by: str | None = Field(default=None, max_length=96)


class PolicyLineEnded(SQLModel, table=True):
    """A policy line that was removed: its fields as they were in `policy_line`, and when and by
    whom it ended. Never updated or deleted: it is the policy's history. (Its own ids: SQLite may
    give a removed line's id to the next line added.)"""

    __tablename__ = "policy_line_ended"
    __table_args__ = (
        # As policy_line's, with the end first among the times: "still in force at t" is its range.
        Index(
            "ix_policy_line_ended_history",
            "ptype",
            "v2",
            "v1",
            "v3",
            "removed_at",
            "added_at",
            "v0",
            "v4",
            "v5",
        ),
        Index("ix_policy_line_ended_ptype_v0", "ptype", "v0"),
        Index("ix_policy_line_ended_source", "source", "source_id"),
    )

    id: int | None = Field(default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True))
    ptype: str = Field(max_length=4)
    v0: str = Field(max_length=96)
    v1: str = Field(max_length=96)
    v2: str = Field(max_length=96)
    v3: str | None = Field(default=None, max_length=32)
    v4: str | None = Field(default=None, max_length=32)
    v5: str | None = Field(default=None, max_length=32)
    v6: str | None = Field(default=None, max_length=32)
    source: str = Field(max_length=16)
    source_id: str = Field(max_length=64)
    added_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    added_by: str | None = Field(default=None, max_length=96)
    removed_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    removed_by: str | None = Field(default=None, max_length=96)


class PolicyChange(SQLModel, table=True):
    """Append-only log of policy deltas that every worker tails (ids become visible in id order)."""

    __tablename__ = "policy_change"

    id: int | None = Field(default=None, sa_column=Column(BIG_ID, primary_key=True, autoincrement=True))
    op: str = Field(max_length=8)
    ptype: str = Field(max_length=4)
    rule: str = Field(sa_column=Column(Text, nullable=False))
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
