"""Cards. ID and bank card numbers are AES-GCM ciphertext plus an HMAC for lookup, never clear text.

Uniqueness is kept by unique *indexes*, not table constraints: on SQLite a UNIQUE constraint is an
index that can never be dropped, and the initial load of a card file (app/ops/cards/imports/importer.py) drops
the secondary indexes and builds them once at the end. Cards are found by ID hash (ix_card_id_hash);
the bank card hash is only compared on the card found, so it has no index.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Integer, LargeBinary
from sqlmodel import Field, SQLModel

from app.store.tables.common import UTCDateTime, utcnow


class Card(SQLModel, table=True):
    __tablename__ = "card"
    __table_args__ = (
        Index("uq_card_tenant_number", "issuing_tenant_id", "card_number", unique=True),
        Index("uq_card_serial", "card_serial", unique=True),
        Index("ix_card_id_hash", "id_number_hash"),
    )

    id: int | None = Field(default=None, primary_key=True)
    issuing_tenant_id: int = Field(foreign_key="tenant.id")
    card_number: str = Field(max_length=9)
    # 卡识别码: unique nationally; partners call it the card serial.
    card_serial: str = Field(max_length=32)
    id_number_enc: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    id_number_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    id_number_masked: str = Field(max_length=18)
    bank_card_enc: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    bank_card_hash: bytes | None = Field(default=None, sa_column=Column(LargeBinary(32), nullable=True))
    bank_card_masked: str | None = Field(default=None, max_length=19)
    service_bank_code: str = Field(max_length=16)
    holder_name: str | None = Field(default=None, max_length=64)
    status: str = Field(default="normal", max_length=16)
    social_function: str = Field(default="not_enabled", max_length=16)
    activation_channel: str | None = Field(default=None, max_length=32)
    pin_state: str = Field(default="default", max_length=16)
    pin_failures: int = 0
    # How often the PIN locked in the current window, and when that window began (its first lock):
    # the rule that hard-locks a PIN locked again and again (app/domain/card.lock_counted).
    pin_locks: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    pin_locks_since: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # argon2 hash, only once the cardholder has set a PIN (state `default` has none).
    pin_hash: str | None = Field(default=None, max_length=128)
    financial_function: str | None = Field(default=None, max_length=32)
    version: int = 1
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
