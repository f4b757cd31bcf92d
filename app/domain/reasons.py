"""Why a business decision was refused: one enum for the API error, the audit event and explain.

The values equal the names so they read the same in GraphQL (`extensions.reason`), in stored audit
events and in logs.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    NO_GRANT = "NO_GRANT"
    """No grant line (nor statutory line) covers this outlet, card tenant and card service."""
    NOT_YET_VALID = "NOT_YET_VALID"
    """A matching grant exists but its window starts after the decision time."""
    EXPIRED = "EXPIRED"
    """A matching grant exists but its window ended before the decision time."""
    SUSPENDED = "SUSPENDED"
    """The matching grant is suspended (e.g. a shrunk ceiling no longer covers it)."""
    BLOCKED = "BLOCKED"
    """A tenant explicitly blocked the outlet (a deny line)."""
    ABOVE_CEILING = "ABOVE_CEILING"
    """The card service is above the effective ceiling for the outlet's kind."""
    OUTSIDE_TENANT = "OUTSIDE_TENANT"
    """The outlet or the card lies outside the granting tenant's subtree."""
    WRONG_BANK = "WRONG_BANK"
    """A financial card service asked at a bank outlet that is not the card's service bank."""
    CHANNEL_MISMATCH = "CHANNEL_MISMATCH"
    """The activation channel does not fit the outlet kind."""
    CARD_STATE = "CARD_STATE"
    """The card's status, social function or PIN state does not allow the card service."""
