"""Input checks every area shares: display text and the reason a change is made.

Each refuses with BAD_INPUT naming the input field as the API calls it, before anything is read or
written (the use case's refusal auditing records the refusal).
"""

from __future__ import annotations

from app.domain.errors import DomainError
from app.domain.text import clean_display_text
from app.ops.errors import OpsError

MAX_REASON = 512


def display_text(value: str, field: str, limit: int) -> str:
    """Visible text (app/domain/text.py) of 1 to `limit` characters once normalised and stripped."""
    try:
        cleaned = clean_display_text(value, field)
    except DomainError as err:
        raise OpsError("BAD_INPUT", err.message, field=field, reason=err.code) from None
    if not 1 <= len(cleaned) <= limit:
        raise OpsError("BAD_INPUT", f"{field} must have 1 to {limit} characters", field=field)
    return cleaned


def reason_text(value: str, field: str = "reason") -> str:
    """Why a change is made, kept in the audit trail: visible text of 1 to 512 characters."""
    return display_text(value, field, MAX_REASON)
