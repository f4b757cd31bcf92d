"""Idempotency keys of partner mutations.

A partner system retries when a response is lost. The first call's answer is stored under
(outlet, key) in the transaction of its change; a retry with the same key and the same input gets
that answer back without acting again, the same key with other input is CONFLICT. Only a keyed hash
of the input is stored (the input holds PINs and ID numbers, whose few possible values a plain
SHA-256 would not hide).
"""

from __future__ import annotations

import re

import orjson
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.audit_chain import canonical_json
from app.ops.errors import OpsError
from app.store.crypto import FieldCipher
from app.store.tables import IdempotencyRecord

KEY_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


def check_key(key: str) -> str:
    if not KEY_PATTERN.match(key):
        raise OpsError(
            "BAD_INPUT",
            "an idempotency key is 8-64 characters of A-Z, a-z, 0-9, '.', '_', ':', '-'",
            field="idempotencyKey",
        )
    return key


def request_hashes(cipher: FieldCipher, operation: str, fields: dict) -> tuple[str, ...]:
    """The input's keyed hash (the input holds PINs and ID numbers): under the current lookup key
    first, and while that key rotates under the previous one too, so that a retry sent across a
    rotation is still recognised. The first is what a new record stores."""
    body = canonical_json({"operation": operation, **fields}).decode()
    return tuple(h.hex() for h in cipher.lookup_candidates(body, context=b"idempotency"))


async def stored_result(
    session: AsyncSession, outlet_id: str, key: str, operation: str, digests: tuple[str, ...]
) -> dict | None:
    """The first call's answer for this key, None if the key is new; CONFLICT if the input differs
    (`digests`: its `request_hashes`)."""
    row = await session.get(IdempotencyRecord, (outlet_id, key))
    if row is None:
        return None
    if row.operation != operation or row.request_hash not in digests:
        raise OpsError(
            "CONFLICT",
            "this idempotency key was used for a different request; use a new key",
            field="idempotencyKey",
        )
    return orjson.loads(row.result)


async def remember(
    session: AsyncSession, outlet_id: str, key: str, operation: str, digests: tuple[str, ...], result: dict
) -> None:
    session.add(
        IdempotencyRecord(
            outlet_id=outlet_id,
            key=key,
            operation=operation,
            request_hash=digests[0],
            result=orjson.dumps(result).decode(),
        )
    )
    await session.flush()
