"""The one exception type of the domain layer.

Domain rules refuse bad input by raising `DomainError` with a stable machine-readable `code`.
Upper layers map the code to an API error (`BAD_INPUT`, `CONFLICT`, ...) without parsing messages,
and the message is safe to show to a caller: domain code never puts a full ID number, bank card
number or PIN into it (the design forbids them in logs and audit events).

`DomainError` subclasses `ValueError` so that code which only knows "this value was bad" (argument
parsers, pydantic validators) still treats it as a validation failure.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Every code the domain layer raises, in one place so callers can match without typos.

    The values equal the names; a `StrEnum` member compares equal to its plain string, so
    `err.code == "BAD_REGION_CODE"` works as well.
    """

    BAD_REGION_CODE = "BAD_REGION_CODE"
    BAD_TENANT_PATH = "BAD_TENANT_PATH"
    BAD_NBS_CODE = "BAD_NBS_CODE"
    BAD_ID_NUMBER = "BAD_ID_NUMBER"
    BAD_BANK_CARD_NUMBER = "BAD_BANK_CARD_NUMBER"
    UNKNOWN_CARD_SERVICE = "UNKNOWN_CARD_SERVICE"
    UNKNOWN_OUTLET_KIND = "UNKNOWN_OUTLET_KIND"
    UNKNOWN_CHANNEL = "UNKNOWN_CHANNEL"
    BAD_CARD_STATE = "BAD_CARD_STATE"
    ILLEGAL_TRANSITION = "ILLEGAL_TRANSITION"
    ALREADY_ACTIVE = "ALREADY_ACTIVE"
    PIN_LOCKED = "PIN_LOCKED"
    BAD_PIN_LOCK_THRESHOLD = "BAD_PIN_LOCK_THRESHOLD"
    BAD_PIN = "BAD_PIN"
    WEAK_PIN = "WEAK_PIN"
    BAD_TEXT = "BAD_TEXT"


class DomainError(ValueError):
    """A domain rule refused a value or a state change.

    `code` is UPPER_SNAKE (see `ErrorCode`), `message` is human-readable and free of personal data,
    `field` names the input that was wrong when there is one (for API error extensions).
    """

    code: str
    message: str
    field: str | None

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"DomainError(code={self.code!r}, message={self.message!r}, field={self.field!r})"

    def __reduce__(self):  # type: ignore[override]
        # Exception pickling replays self.args (only the message); keep all three attributes so
        # the error survives crossing a process boundary (workers, multiprocessing tests).
        return (type(self), (self.code, self.message, self.field))


def show(value: object, limit: int = 40) -> str:
    """repr() of a caller-supplied *public* value for an error message, cut so a huge input cannot
    blow up a log line. Never use it for personal data (ID, bank card numbers, PINs)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
