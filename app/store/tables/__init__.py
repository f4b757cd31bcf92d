"""All tables; importing this package registers them on `SQLModel.metadata`."""

from app.store.tables.audit import (
    AuditArchive,
    AuditCheckpoint,
    AuditEvent,
    AuditVerification,
    PolicyChange,
    PolicyLine,
    PolicyLineEnded,
)
from app.store.tables.cards import Card
from app.store.tables.grants import Grant
from app.store.tables.idempotency import IdempotencyRecord
from app.store.tables.principals import (
    ConsoleSession,
    LoginFailure,
    PartnerKey,
    PersonalToken,
    Principal,
    PrincipalLogin,
    RoleAssignment,
    RoleAssignmentEnded,
)
from app.store.tables.tenancy import Ceiling, Outlet, OutletBlock, Tenant

__all__ = [
    "AuditArchive",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditVerification",
    "Card",
    "Ceiling",
    "ConsoleSession",
    "Grant",
    "IdempotencyRecord",
    "LoginFailure",
    "Outlet",
    "OutletBlock",
    "PartnerKey",
    "PersonalToken",
    "PolicyChange",
    "PolicyLine",
    "PolicyLineEnded",
    "Principal",
    "PrincipalLogin",
    "RoleAssignment",
    "RoleAssignmentEnded",
    "Tenant",
]
