"""Idempotency records of partner mutations: one per (outlet, key), written with the change itself."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from app.store.tables.common import UTCDateTime, utcnow


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_record"

    outlet_id: str = Field(foreign_key="outlet.id", max_length=64, primary_key=True)
    key: str = Field(max_length=64, primary_key=True)
    operation: str = Field(max_length=48)
    # HMAC-SHA256 of the canonical input: the input itself holds PINs and ID numbers.
    request_hash: str = Field(max_length=64)
    # The first answer (masked card view or coded error) as JSON, replayed on a retry.
    result: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
