"""Rules for a new card PIN (the social-security application's 6-digit password).

Checked before hashing, when a cardholder sets, changes or resets the PIN. A new PIN must not be
guessable from the card's history or from the handful of PINs everybody tries first: all digits
equal, a straight run up or down, or the issuing default. Messages never contain the PIN.
"""

from __future__ import annotations

from itertools import pairwise

from app.domain.errors import DomainError, ErrorCode

PIN_LENGTH = 6
DEFAULT_PIN = "123456"
"""The PIN a card is issued with (state `default`), unless the issuing tenant says otherwise."""


def validate_new_pin(pin: str, default_pin: str = DEFAULT_PIN) -> str:
    """Return `pin` if acceptable; BAD_PIN if not exactly 6 ASCII digits, WEAK_PIN if guessable."""
    if not (isinstance(pin, str) and len(pin) == PIN_LENGTH and pin.isascii() and pin.isdigit()):
        raise DomainError(ErrorCode.BAD_PIN, "a PIN is exactly 6 digits", field="pin")
    if pin == default_pin:
        raise DomainError(ErrorCode.WEAK_PIN, "the new PIN must differ from the default PIN", field="pin")
    if len(set(pin)) == 1:
        raise DomainError(ErrorCode.WEAK_PIN, "a PIN must not repeat one digit", field="pin")
    steps = {int(b) - int(a) for a, b in pairwise(pin)}
    if steps in ({1}, {-1}):
        raise DomainError(
            ErrorCode.WEAK_PIN, "a PIN must not be a straight run of digits up or down", field="pin"
        )
    return pin
