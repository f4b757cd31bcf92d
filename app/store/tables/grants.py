"""Grants: a tenant authorizes an outlet (or an outlet kind) to perform one card service."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, Index
from sqlmodel import Field, SQLModel

from app.store.tables.common import UTCDateTime, compare_and_set, utcnow, version_column

_GRANT_VERSION = version_column()


class Grant(SQLModel, table=True):
    __tablename__ = "grant"
    __mapper_args__ = compare_and_set(_GRANT_VERSION)
    __table_args__ = (
        Index("ix_grant_tenant_state", "tenant_id", "state"),
        Index("ix_grant_outlet", "outlet_id"),
        Index("ix_grant_kind", "tenant_id", "outlet_kind"),
        # Exactly one target: one outlet, or every outlet of a kind inside the tenant.
        CheckConstraint("(outlet_id is null) <> (outlet_kind is null)", name="ck_grant_one_target"),
        CheckConstraint(
            "state in ('proposed', 'active', 'suspended', 'revoked', 'expired', 'rejected')",
            name="ck_grant_state",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id")
    outlet_id: str | None = Field(default=None, foreign_key="outlet.id", max_length=64)
    outlet_kind: str | None = Field(default=None, max_length=32)
    service: str = Field(max_length=32)
    valid_from: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    valid_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    document_ref: str = Field(max_length=128)
    reason: str | None = Field(default=None, max_length=512)
    state: str = Field(default="proposed", max_length=16)
    state_reason: str | None = Field(default=None, max_length=512)
    proposed_by: int | None = Field(default=None, foreign_key="principal.id")
    approved_by: int | None = Field(default=None, foreign_key="principal.id")
    version: int = Field(default=1, sa_column=_GRANT_VERSION)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
