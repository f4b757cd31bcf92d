"""People (principals), their roles per tenant, personal tokens and partner API keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, Index, LargeBinary, UniqueConstraint, false
from sqlmodel import Field, SQLModel

from app.store.tables.common import UTCDateTime, compare_and_set, utcnow, version_column

_PRINCIPAL_VERSION = version_column()


class Principal(SQLModel, table=True):
    __tablename__ = "principal"
    __mapper_args__ = compare_and_set(_PRINCIPAL_VERSION)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    display_name: str = Field(max_length=128)
    # Who created this principal: a proposer may never approve through a principal they created.
    created_by: int | None = Field(default=None, foreign_key="principal.id")
    active: bool = True
    version: int = Field(default=1, sa_column=_PRINCIPAL_VERSION)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    # When they were deactivated: their roles end then, though the rows stay (the role history).
    deactivated_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class RoleAssignment(SQLModel, table=True):
    __tablename__ = "role_assignment"
    __table_args__ = (
        UniqueConstraint("principal_id", "tenant_id", "role", name="uq_role_assignment"),
        Index("ix_role_assignment_tenant", "tenant_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    principal_id: int = Field(foreign_key="principal.id")
    tenant_id: int = Field(foreign_key="tenant.id")
    role: str = Field(max_length=32)
    created_by: int | None = Field(default=None, foreign_key="principal.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class RoleAssignmentEnded(SQLModel, table=True):
    """A role assignment that was removed: who held which role where, from when until when, and who
    gave and took it. Never updated or deleted, so "who could approve in Tianhe on 3 March" is
    answered after the role is gone (app/store/role_history.py). The tenant is kept by path: a
    tenant may be pruned once nobody holds a role there."""

    __tablename__ = "role_assignment_ended"
    __table_args__ = (Index("ix_role_assignment_ended_tenant", "tenant"),)

    id: int | None = Field(default=None, primary_key=True)
    principal_id: int = Field(foreign_key="principal.id")
    tenant: str = Field(max_length=64)
    role: str = Field(max_length=32)
    added_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    added_by: str | None = Field(default=None, max_length=96)  # principal:<name>; None: not known
    removed_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    removed_by: str | None = Field(default=None, max_length=96)


class PrincipalLogin(SQLModel, table=True):
    """How a person logs in to the console: an argon2 password and a TOTP second factor. The TOTP
    secret is kept encrypted with the data key (FieldCipher, context b"totp_secret"); it is set at
    enrolment, and `totp_enrolled_at` says when the person proved they hold it."""

    __tablename__ = "principal_login"

    principal_id: int = Field(primary_key=True, foreign_key="principal.id")
    password_hash: str = Field(max_length=255)
    password_set_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    totp_secret: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    totp_enrolled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # The last 30-second step whose code was accepted: a code works once.
    last_totp_step: int | None = None


class ConsoleSession(SQLModel, table=True):
    """A console login: kept server-side so that logout, deactivation and idleness end it at once.
    Only the SHA-256 of its cookie is kept. `stage` is "second_factor" or "enrol" after the password,
    "open" after the second factor, "ended" at the end."""

    __tablename__ = "console_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    principal_id: int = Field(foreign_key="principal.id", index=True)
    stage: str = Field(max_length=16)
    address: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    last_seen_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    ended_why: str | None = Field(default=None, max_length=32)


class LoginFailure(SQLModel, table=True):
    """A failed console login, counted for lockout per account and per address across workers."""

    __tablename__ = "login_failure"
    __table_args__ = (Index("ix_login_failure_subject_at", "subject", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(max_length=160)  # account:<name> or address:<ip>
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class PersonalToken(SQLModel, table=True):
    """A person's bearer token; only its SHA-256 is kept (a high-entropy secret needs no argon2)."""

    __tablename__ = "personal_token"

    id: int | None = Field(default=None, primary_key=True)
    principal_id: int = Field(foreign_key="principal.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    # The first characters, to tell tokens apart in lists and audit without revealing them.
    prefix: str = Field(max_length=16)
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # An enrolment token: acts as nobody, only obtains its owner's own token, once (ops/principals/tokens.py).
    one_time: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class PartnerKey(SQLModel, table=True):
    """An API key bound to one outlet; only its SHA-256 is kept."""

    __tablename__ = "partner_key"

    id: int | None = Field(default=None, primary_key=True)
    outlet_id: str = Field(foreign_key="outlet.id", max_length=64, index=True)
    key_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16)
    rate_limit: str | None = Field(default=None, max_length=32)
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    created_by: int | None = Field(default=None, foreign_key="principal.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
