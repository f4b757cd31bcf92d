"""Department settings and their inheritance down the tenant tree.

The PIN lock threshold is the tenant's own value, else its nearest ancestor's. Two-person approval
may be tightened below, never loosened (like ceilings): it applies wherever the tenant or any
ancestor turns it on, whatever a department below says; where nobody turns it on, the nearest
explicit value (or the platform default, off) holds. So a city administrator cannot switch off the
rule a province set for them: only the province can (app/ops/tenants/settings.loosening_refusal).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from app.domain.card import DEFAULT_PIN_LOCK_THRESHOLD
from app.domain.regions import ancestor_paths

DEFAULT_TWO_PERSON_APPROVAL = False


class OwnSettings(Protocol):
    """What one department sets itself (None: nothing, it inherits); a tenant row is one."""

    path: str
    two_person_approval: bool | None
    pin_lock_threshold: int | None


@dataclass(frozen=True)
class EffectiveSettings:
    two_person_approval: bool
    two_person_approval_from: str | None  # the tenant whose value applies; None = platform default
    pin_lock_threshold: int
    pin_lock_threshold_from: str | None


def effective(chain: Sequence[OwnSettings]) -> EffectiveSettings:
    """The settings in force at the last department of `chain` (it and its ancestors, top-most first)."""
    # Two-person approval: the top-most tenant that turns it on binds everything below it.
    required = next((row.path for row in chain if row.two_person_approval), None)
    if required is not None:
        approval, approval_from = True, required
    else:
        nearest = next((row for row in reversed(chain) if row.two_person_approval is not None), None)
        approval = DEFAULT_TWO_PERSON_APPROVAL if nearest is None else bool(nearest.two_person_approval)
        approval_from = None if nearest is None else nearest.path
    threshold, threshold_from = DEFAULT_PIN_LOCK_THRESHOLD, None
    for row in reversed(chain):  # nearest first
        if row.pin_lock_threshold is not None:
            threshold, threshold_from = row.pin_lock_threshold, row.path
            break
    return EffectiveSettings(approval, approval_from, threshold, threshold_from)


def required_above(tenant_path: str, approvals: dict[str, bool | None]) -> str | None:
    """The top-most strict ancestor of `tenant_path` that turns two-person approval on, given each
    tenant's own value by path (None: it sets nothing), or None."""
    return next((path for path in ancestor_paths(tenant_path)[:-1] if approvals.get(path)), None)
