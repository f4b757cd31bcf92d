"""Signed checkpoints of the audit chains: every chain's head (tenant, seq, hash, time), signed with
the platform's Ed25519 key (SSC_AUDIT_SIGNING_KEY).

The chains are plain SHA-256: anyone who can write to the database can rewrite a chain whole and
re-hash it so that it verifies. A checkpoint kept outside the database (printed by `ssc audit
checkpoint`, handed to another system, to paper, to an inspector) fixes the heads at that time;
`ssc audit verify` checks that each signed head is still there with the same hash. The workers also
sign one on a timer into `audit_checkpoint` whenever events were written since the last one, so a
writer to the database alone, without the key, can rewrite at most the events after it.

The signed bytes are the canonical JSON of the document without its `signature` field, so an
inspector can check a checkpoint with any Ed25519 implementation and the public key
(`ssc audit public-key`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Connection, func, text
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.audit_chain import Link, canonical_json, event_time_text
from app.store.db import take_write_lock
from app.store.tables import AuditCheckpoint, AuditEvent

FORMAT = "ssc-audit-checkpoint/1"
log = logging.getLogger("ssc.audit")


class CheckpointError(ValueError):
    """A checkpoint document that is not one, or whose signature does not hold."""


@dataclass(frozen=True)
class Head:
    """The last event of one chain when the checkpoint was signed."""

    tenant: str
    seq: int
    hash: str
    at: str  # the event's time as hashed (app/domain/audit_chain.event_time_text)

    def link(self) -> Link:
        return Link(self.tenant, self.seq, self.hash)


@dataclass(frozen=True)
class Checkpoint:
    at: str
    heads: tuple[Head, ...]
    key: str  # fingerprint of the public key that verifies it
    signature: str  # base64 of the Ed25519 signature over `signed_bytes`
    kind: str = "manual"
    id: int | None = None

    def payload(self) -> dict:
        return {
            "format": FORMAT,
            "at": self.at,
            "heads": [{"tenant": h.tenant, "seq": h.seq, "hash": h.hash, "at": h.at} for h in self.heads],
            "key": self.key,
        }

    def signed_bytes(self) -> bytes:
        return canonical_json(self.payload())

    def document(self) -> dict:
        """The checkpoint as printed and exported: JSON any inspector can check on their own."""
        return {**self.payload(), "signature": self.signature}

    @classmethod
    def from_document(cls, document: object) -> Checkpoint:
        try:
            assert isinstance(document, dict) and document.get("format") == FORMAT
            heads = tuple(
                Head(str(h["tenant"]), int(h["seq"]), str(h["hash"]), str(h["at"])) for h in document["heads"]
            )
            return cls(str(document["at"]), heads, str(document["key"]), str(document["signature"]))
        except (AssertionError, KeyError, TypeError, ValueError):
            raise CheckpointError(f"not a checkpoint of the {FORMAT} format") from None

    def check(self, public_keys: Sequence[Ed25519PublicKey]) -> None:
        """Raise CheckpointError unless one of `public_keys` (the trusted ones: the current signing
        key's and those it replaced) signed this checkpoint."""
        by_fingerprint = {fingerprint(key): key for key in public_keys}
        public_key = by_fingerprint.get(self.key)
        if public_key is None:
            raise CheckpointError(
                f"the checkpoint was signed by key {self.key}, not by a trusted one "
                f"({', '.join(by_fingerprint) or 'none given'})"
            )
        try:
            public_key.verify(base64.b64decode(self.signature, validate=True), self.signed_bytes())
        except (InvalidSignature, binascii.Error, ValueError):
            raise CheckpointError("the checkpoint's signature does not hold: it was altered") from None

    def links(self) -> list[Link]:
        return [head.link() for head in self.heads]


def fingerprint(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:32]


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


_PEM_BLOCK = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """A public key as `ssc audit public-key` prints it (PEM)."""
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise CheckpointError("not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError("not an Ed25519 public key")
    return key


def load_public_keys(pem: bytes) -> list[Ed25519PublicKey]:
    """Every public key of a PEM file (`ssc audit public-key` outputs, concatenated): the keys that
    signed over the years, trusted together."""
    blocks = _PEM_BLOCK.findall(pem)
    if not blocks:
        raise CheckpointError("not a PEM public key")
    return [load_public_key(block) for block in blocks]


class Signer:
    """Signs checkpoints with the platform's key (its 32-byte seed, from the settings)."""

    def __init__(self, seed: bytes) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.public_key = self._key.public_key()
        self.fingerprint = fingerprint(self.public_key)

    def sign(self, heads: Iterable[Head], at: datetime, kind: str = "manual") -> Checkpoint:
        unsigned = Checkpoint(event_time_text(at), tuple(heads), self.fingerprint, "", kind)
        signature = base64.b64encode(self._key.sign(unsigned.signed_bytes())).decode()
        return Checkpoint(unsigned.at, unsigned.heads, unsigned.key, signature, kind)


_HEADS = text(
    "SELECT e.tenant, e.seq, e.hash, e.at FROM audit_event e"
    " JOIN (SELECT tenant, max(seq) AS seq FROM audit_event GROUP BY tenant) h"
    " ON e.tenant = h.tenant AND e.seq = h.seq ORDER BY e.tenant"
).columns(AuditEvent.tenant, AuditEvent.seq, AuditEvent.hash, AuditEvent.at)


async def read_heads(session: AsyncSession) -> list[Head]:
    rows = (await session.exec(_HEADS)).all()
    return [Head(tenant, seq, hash_, event_time_text(at)) for tenant, seq, hash_, at in rows]


async def _lock_checkpoints(session: AsyncSession) -> None:
    # One checkpoint at a time across workers: the timer of each worker may fire together.
    if session.bind.dialect.name == "postgresql":
        await session.exec(text("select pg_advisory_xact_lock(hashtext('audit:checkpoint'))"))
    else:
        await take_write_lock(session)


def _stored(checkpoint: Checkpoint, through_event: int) -> AuditCheckpoint:
    return AuditCheckpoint(
        at=datetime.fromisoformat(checkpoint.at.replace("Z", "+00:00")),
        kind=checkpoint.kind,
        through_event=through_event,
        heads=canonical_json(checkpoint.payload()["heads"]).decode(),
        key=checkpoint.key,
        signature=checkpoint.signature,
    )


def loaded(row: AuditCheckpoint) -> Checkpoint:
    heads = tuple(Head(h["tenant"], h["seq"], h["hash"], h["at"]) for h in orjson.loads(row.heads))
    return Checkpoint(event_time_text(row.at), heads, row.key, row.signature, row.kind, row.id)


async def sign_heads(
    sessions: async_sessionmaker[AsyncSession],
    signer: Signer,
    *,
    kind: str = "manual",
    only_if_new: bool = False,
) -> Checkpoint | None:
    """Sign the heads of every chain now and keep the checkpoint; with `only_if_new`, only when events
    were written since the last one (None otherwise)."""
    async with sessions() as session, session.begin():
        await _lock_checkpoints(session)
        through = (await session.exec(select(func.coalesce(func.max(AuditEvent.id), 0)))).one()
        if only_if_new:
            last = (await session.exec(select(func.max(AuditCheckpoint.through_event)))).one()
            if last is not None and last >= through:
                return None
        checkpoint = signer.sign(await read_heads(session), datetime.now(UTC), kind)
        row = _stored(checkpoint, through)
        session.add(row)
        await session.flush()
        return loaded(row)


def stored_row(connection: Connection, checkpoint: Checkpoint, through_event: int) -> int:
    """Keep a checkpoint signed outside a session (an archive's), in the caller's transaction."""
    row = _stored(checkpoint, through_event)
    values = {c.name: getattr(row, c.name) for c in AuditCheckpoint.__table__.columns if c.name != "id"}
    inserted = connection.execute(AuditCheckpoint.__table__.insert().values(values))
    return inserted.inserted_primary_key[0]


def stored_checkpoint(connection: Connection, checkpoint_id: int | None = None) -> Checkpoint | None:
    """A kept checkpoint by id, or the latest one of all chains (None: there is none)."""
    table = AuditCheckpoint.__table__
    query = table.select()
    if checkpoint_id is None:
        query = query.where(table.c.kind != "archive").order_by(table.c.id.desc()).limit(1)
    else:
        query = query.where(table.c.id == checkpoint_id)
    row = connection.execute(query).first()
    return loaded(row) if row else None


async def checkpoint_timer(sessions: async_sessionmaker[AsyncSession], signer: Signer, seconds: int) -> None:
    """Run by each worker: every `seconds`, sign the heads if events were written since the last
    checkpoint (whichever worker signed it). Errors are logged and retried at the next tick."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await sign_heads(sessions, signer, kind="scheduled", only_if_new=True)
        except Exception:
            log.exception("signing the audit checkpoint failed; retrying in %s s", seconds)
