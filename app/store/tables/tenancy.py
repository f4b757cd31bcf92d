"""Tenants (HRSS departments), their outlets, ceilings and outlet blocks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.store.tables.common import UTCDateTime, compare_and_set, utcnow, version_column

_TENANT_VERSION = version_column()


class Tenant(SQLModel, table=True):
    """One HRSS department; `path` (e.g. cn/440000/440100) is also its Casbin domain."""

    __tablename__ = "tenant"
    __mapper_args__ = compare_and_set(_TENANT_VERSION)

    id: int | None = Field(default=None, primary_key=True)
    path: str = Field(max_length=64, unique=True)
    parent_id: int | None = Field(default=None, foreign_key="tenant.id", index=True)
    code: str = Field(max_length=6)
    level: str = Field(max_length=16)
    name: str = Field(max_length=128)
    # Settings: NULL means "inherit from the nearest ancestor that sets it".
    two_person_approval: bool | None = None
    pin_lock_threshold: int | None = None
    # The tenants/ file that declares this tenant, or NULL when it was created through the API.
    managed_by: str | None = Field(default=None, max_length=255)
    version: int = Field(default=1, sa_column=_TENANT_VERSION)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


_OUTLET_VERSION = version_column()


class Outlet(SQLModel, table=True):
    """A place or system serving cardholders; it belongs to exactly one tenant and never grants."""

    __tablename__ = "outlet"
    __mapper_args__ = compare_and_set(_OUTLET_VERSION)
    __table_args__ = (
        Index("ix_outlet_tenant_kind", "tenant_id", "kind"),
        Index("ix_outlet_bank", "bank_code"),
        UniqueConstraint("nbs_code", name="uq_outlet_nbs_code"),
        CheckConstraint("status in ('open', 'closed')", name="ck_outlet_status"),
    )

    id: str = Field(primary_key=True, max_length=64)
    tenant_id: int = Field(foreign_key="tenant.id")
    kind: str = Field(max_length=32)
    name: str = Field(max_length=128)
    bank_code: str | None = Field(default=None, max_length=16)
    nbs_code: str | None = Field(default=None, max_length=12)
    address: str | None = Field(default=None, max_length=255)
    status: str = Field(default="open", max_length=16)
    managed_by: str | None = Field(default=None, max_length=255)
    version: int = Field(default=1, sa_column=_OUTLET_VERSION)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


_CEILING_VERSION = version_column()


class Ceiling(SQLModel, table=True):
    """What a tenant lets its descendants extend to one outlet kind (JSON list of card services)."""

    __tablename__ = "ceiling"
    __mapper_args__ = compare_and_set(_CEILING_VERSION)
    __table_args__ = (UniqueConstraint("tenant_id", "outlet_kind", name="uq_ceiling_tenant_kind"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id")
    outlet_kind: str = Field(max_length=32)
    services: str = Field(max_length=1024)
    set_by: int | None = Field(default=None, foreign_key="principal.id")
    version: int = Field(default=1, sa_column=_CEILING_VERSION)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class OutletBlock(SQLModel, table=True):
    """An explicit block of an outlet by a tenant: the only source of `deny` policy lines."""

    __tablename__ = "outlet_block"
    __table_args__ = (Index("ix_outlet_block_outlet", "outlet_id"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id")
    outlet_id: str = Field(foreign_key="outlet.id", max_length=64)
    service: str = Field(max_length=32)
    reason: str = Field(max_length=512)
    active: bool = True
    created_by: int | None = Field(default=None, foreign_key="principal.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
