"""Card PINs: argon2id hashes once the holder sets one, the issuing default before that.

Default-PIN rule (decided here): every card is issued with `app.domain.pin.DEFAULT_PIN` ("123456").
A card in PIN state `default` has no per-card hash; its PIN is checked against that rule, and a new
PIN must differ from it. Hashing and verifying run in the loop's default thread pool (argon2 costs
tens of milliseconds of CPU); its few workers also bound the memory a burst of PIN checks takes.
"""

from __future__ import annotations

import asyncio
import hmac

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.domain.card import PinState
from app.domain.pin import DEFAULT_PIN

# OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane): ~20 ms a check here.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def default_pin() -> str:
    return DEFAULT_PIN


async def hash_pin(pin: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, pin)


async def pin_matches(pin_state: str, pin_hash: str | None, pin: str) -> bool:
    """Whether `pin` is the card's PIN (a locked card is checked the same way; callers refuse first)."""
    if pin_hash is None:
        return pin_state != PinState.set and hmac.compare_digest(pin.encode(), default_pin().encode())
    return await asyncio.to_thread(_verify, pin_hash, pin)


def _verify(pin_hash: str, pin: str) -> bool:
    try:
        return _HASHER.verify(pin_hash, pin)
    except (VerificationError, InvalidHashError):
        return False
