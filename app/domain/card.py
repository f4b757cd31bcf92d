"""The card state machine: card status, social function and PIN state, as pure functions.

A card's state has three independent parts (design §3): the card `status`, whether the
social-security function is enabled, and the PIN state with its failure counter. Each transition
takes a `CardState` and returns a new one, or raises `DomainError`:

- `ILLEGAL_TRANSITION`: the action does not apply to the current state (the message names both);
- `ALREADY_ACTIVE`: activating a card whose social function is already enabled. A separate code
  because it is the one refusal a caller may treat as success: the bank's financial sync or a
  hospital's first-use message can arrive twice, and the second must not look like a fault;
- `PIN_LOCKED`: a PIN action that a locked PIN forbids (verify, change, another failure), or an
  unlock or reset of a hard-locked PIN away from an HRSS hall or the 12333 desk;
- `BAD_PIN_LOCK_THRESHOLD`: a lock threshold outside 1..10.

Card status transitions:

    normal      --report_temp_loss-->   temp_loss
    temp_loss   --release_loss------->  normal
    normal, temp_loss --report_formal_loss--> formal_loss   (final: the card is replaced)
    normal      --lock_app----------->  app_locked
    app_locked  --unlock_app--------->  normal
    normal      --seal--------------->  sealed
    sealed      --unseal------------->  normal
    anything but cancelled --cancel-->  cancelled          (final)

Sealing (封存, e.g. while an insurance relation is transferred or a holder's death is being
processed) is only allowed from `normal`, and unsealing returns to `normal`. The status before
sealing is not remembered, so allowing `seal` from a loss or locked status would let `unseal`
quietly revive a lost or locked card; such a card must be resolved (released, unlocked or
cancelled) first.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from app.domain.catalogue import CardService
from app.domain.errors import DomainError, ErrorCode


class CardStatus(StrEnum):
    normal = "normal"
    temp_loss = "temp_loss"
    formal_loss = "formal_loss"
    app_locked = "app_locked"
    cancelled = "cancelled"
    sealed = "sealed"


class SocialFunction(StrEnum):
    not_enabled = "not_enabled"
    enabled = "enabled"


class PinState(StrEnum):
    default = "default"  # issued PIN, no per-card hash yet
    set = "set"  # the cardholder chose a PIN
    locked = "locked"  # too many failures; needs reset or unlock
    # Locked again and again within a short time (someone guessing through lock and unlock): only an
    # HRSS hall or the 12333 desk unlocks or resets it, after checking the holder's original ID.
    hard_locked = "hard_locked"


LOCKED_PIN_STATES = frozenset({PinState.locked, PinState.hard_locked})


# Value (or member: a StrEnum member hashes and compares as its value) -> member. A dict lookup,
# because a state is built from stored strings on every partner call and an Enum call costs ~1 µs.
_STATUSES = {m.value: m for m in CardStatus}
_SOCIAL_FUNCTIONS = {m.value: m for m in SocialFunction}
_PIN_STATES = {m.value: m for m in PinState}

DEFAULT_PIN_LOCK_THRESHOLD = 3
MIN_PIN_LOCK_THRESHOLD = 1
MAX_PIN_LOCK_THRESHOLD = 10


@dataclass(frozen=True)
class CardState:
    """The state of one card. Plain strings from storage are coerced to the enums."""

    status: CardStatus
    social_function: SocialFunction
    pin_state: PinState
    pin_failures: int = 0

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "status", _STATUSES[self.status])
            object.__setattr__(self, "social_function", _SOCIAL_FUNCTIONS[self.social_function])
            object.__setattr__(self, "pin_state", _PIN_STATES[self.pin_state])
        except (KeyError, TypeError) as exc:  # TypeError: an unhashable value
            raise DomainError(ErrorCode.BAD_CARD_STATE, f"bad card state: {exc!r}") from None
        if type(self.pin_failures) is not int or self.pin_failures < 0:
            raise DomainError(ErrorCode.BAD_CARD_STATE, "pin_failures must be a non-negative integer")


NEW_CARD = CardState(CardStatus.normal, SocialFunction.not_enabled, PinState.default)
"""A freshly issued card: usable, social function not yet enabled, issuing default PIN."""


def _illegal(action: str, state: CardState, why: str) -> DomainError:
    return DomainError(
        ErrorCode.ILLEGAL_TRANSITION,
        f"cannot {action}: card status is {state.status.value}, social function "
        f"{state.social_function.value}, PIN {state.pin_state.value}; {why}",
    )


def _require_status(action: str, state: CardState, *allowed: CardStatus) -> None:
    if state.status not in allowed:
        names = ", ".join(s.value for s in allowed)
        raise _illegal(action, state, f"allowed only from status {names}")


# --- card status -------------------------------------------------------------------------------


def activate(state: CardState) -> CardState:
    """Enable the social-security function (any activation channel)."""
    if state.social_function is SocialFunction.enabled:
        raise DomainError(ErrorCode.ALREADY_ACTIVE, "cannot activate: the social function is already enabled")
    _require_status("activate", state, CardStatus.normal)
    return replace(state, social_function=SocialFunction.enabled)


def report_temp_loss(state: CardState) -> CardState:
    """Temporary loss report (临时挂失): stops use at once, releasable."""
    _require_status("report_temp_loss", state, CardStatus.normal)
    return replace(state, status=CardStatus.temp_loss)


def release_loss(state: CardState) -> CardState:
    """Release a temporary loss (解挂). A formal loss is final: the card is replaced instead."""
    if state.status is CardStatus.formal_loss:
        raise _illegal("release_loss", state, "a formal loss cannot be released; the card must be replaced")
    _require_status("release_loss", state, CardStatus.temp_loss)
    return replace(state, status=CardStatus.normal)


def report_formal_loss(state: CardState) -> CardState:
    """Formal loss report (正式挂失), the first step of replacing the card."""
    _require_status("report_formal_loss", state, CardStatus.normal, CardStatus.temp_loss)
    return replace(state, status=CardStatus.formal_loss)


def cancel(state: CardState) -> CardState:
    """Cancel the card (注销); final."""
    if state.status is CardStatus.cancelled:
        raise _illegal("cancel", state, "the card is already cancelled")
    return replace(state, status=CardStatus.cancelled)


def lock_app(state: CardState) -> CardState:
    """Lock the social-security application on the card (应用锁定)."""
    _require_status("lock_app", state, CardStatus.normal)
    return replace(state, status=CardStatus.app_locked)


def unlock_app(state: CardState) -> CardState:
    _require_status("unlock_app", state, CardStatus.app_locked)
    return replace(state, status=CardStatus.normal)


def seal(state: CardState) -> CardState:
    """Seal the card (封存); only a `normal` card (see the module docstring for why)."""
    _require_status("seal", state, CardStatus.normal)
    return replace(state, status=CardStatus.sealed)


def unseal(state: CardState) -> CardState:
    _require_status("unseal", state, CardStatus.sealed)
    return replace(state, status=CardStatus.normal)


# --- PIN -----------------------------------------------------------------------------------------


def validate_pin_lock_threshold(threshold: int) -> int:
    """A tenant setting: failures before the PIN locks, 1..10 (raises BAD_PIN_LOCK_THRESHOLD)."""
    if type(threshold) is not int or not MIN_PIN_LOCK_THRESHOLD <= threshold <= MAX_PIN_LOCK_THRESHOLD:
        raise DomainError(
            ErrorCode.BAD_PIN_LOCK_THRESHOLD,
            f"the PIN lock threshold must be an integer from {MIN_PIN_LOCK_THRESHOLD} "
            f"to {MAX_PIN_LOCK_THRESHOLD}",
            field="pin_lock_threshold",
        )
    return threshold


def _pin_locked(action: str) -> DomainError:
    return DomainError(ErrorCode.PIN_LOCKED, f"cannot {action}: the PIN is locked; reset or unlock it first")


def _hard_locked(action: str) -> DomainError:
    return DomainError(
        ErrorCode.PIN_LOCKED,
        f"cannot {action}: the PIN locked too often in a short time; only an HRSS hall or the 12333 "
        "desk unlocks it, after checking the holder's original ID",
    )


@dataclass(frozen=True)
class PinLocks:
    """How often a card's PIN locked within the current window, which starts at its first lock."""

    count: int = 0
    since: datetime | None = None


@dataclass(frozen=True)
class HardLockRule:
    """The PIN hard-locks at its `after`-th lock within `window` (settings: 3 in 24 hours)."""

    after: int
    window: timedelta


def pin_failed(state: CardState, threshold: int = DEFAULT_PIN_LOCK_THRESHOLD) -> CardState:
    """Count a wrong PIN; the failure that reaches `threshold` locks the PIN.

    A counter already at or above a (since lowered) threshold locks on the next failure.
    """
    validate_pin_lock_threshold(threshold)
    if state.pin_state in LOCKED_PIN_STATES:
        raise _pin_locked("record a PIN failure")
    failures = state.pin_failures + 1
    if failures >= threshold:
        return replace(state, pin_state=PinState.locked, pin_failures=failures)
    return replace(state, pin_failures=failures)


def lock_counted(
    state: CardState, locks: PinLocks, now: datetime, rule: HardLockRule
) -> tuple[CardState, PinLocks]:
    """Count the lock that `state` (just locked by `pin_failed`) is in; the rule's `after`-th lock
    within its window hard-locks the PIN. Wrong PINs are counted per card, whichever outlet sends
    them, so unlocking and guessing on cannot go on: the security review guessed a 6-digit PIN in
    123 calls from one outlet holding password_change and password_unlock."""
    if locks.since is None or now - locks.since >= rule.window:
        locks = PinLocks(1, now)
    else:
        locks = PinLocks(locks.count + 1, locks.since)
    if state.pin_state is PinState.locked and locks.count >= rule.after:
        state = replace(state, pin_state=PinState.hard_locked)
    return state, locks


def pin_verified(state: CardState) -> CardState:
    """A correct PIN clears the failure counter. A locked PIN cannot be verified at all."""
    if state.pin_state in LOCKED_PIN_STATES:
        raise _pin_locked("verify the PIN")
    return replace(state, pin_failures=0)


def pin_changed(state: CardState) -> CardState:
    """The holder changed the PIN knowing the old one (password_change)."""
    if state.pin_state in LOCKED_PIN_STATES:
        raise _pin_locked("change the PIN")
    return replace(state, pin_state=PinState.set, pin_failures=0)


def pin_reset(state: CardState, *, at_counter: bool = False) -> CardState:
    """A new PIN set after an identity check, without the old one (password_reset); also unlocks.
    A hard-locked PIN only at an HRSS hall or the 12333 desk (`at_counter`)."""
    if state.pin_state is PinState.hard_locked and not at_counter:
        raise _hard_locked("reset the PIN here")
    return replace(state, pin_state=PinState.set, pin_failures=0)


def pin_unlock(
    state: CardState, *, pin_was_set: bool, identity_verified: bool = False, at_counter: bool = False
) -> CardState:
    """Unlock a locked PIN (password_unlock), keeping the PIN itself.

    `pin_was_set` says whether the card has a per-card PIN hash (the holder had set a PIN); the
    locked state alone cannot tell, and guessing "default" would make a card with a chosen PIN
    accept the issuing default again. Required, so every caller answers it from the card record.
    A hard-locked PIN needs the holder's identity checked (`identity_verified`) at an HRSS hall or
    the 12333 desk (`at_counter`).
    """
    if state.pin_state not in LOCKED_PIN_STATES:
        raise _illegal("pin_unlock", state, "only a locked PIN can be unlocked")
    if state.pin_state is PinState.hard_locked and not (identity_verified and at_counter):
        raise _hard_locked(
            "unlock the PIN here" if not at_counter else "unlock the PIN without an identity check"
        )
    return replace(state, pin_state=PinState.set if pin_was_set else PinState.default, pin_failures=0)


# --- which card services the state allows (Reason.CARD_STATE) -----------------------------------

# status       | card services allowed
# -------------+-------------------------------------------------------------------------------
# normal       | all except loss_release, with three refinements on the other parts of the state:
#              |   activation       only while the social function is not_enabled
#              |   password_change  only while the PIN is not locked (it needs the old PIN)
#              |   password_unlock  only while the PIN is locked
# temp_loss    | info_inquiry, loss_release, financial_loss_report (the holder freezes the bank
#              | account in the same visit in which the card is reported lost)
# formal_loss  | info_inquiry (the card is being replaced)
# app_locked   | info_inquiry (the application is unlocked at the HRSS hall, not an extended service)
# cancelled    | info_inquiry (a holder may ask why a card no longer works)
# sealed       | info_inquiry
#
# PIN services do not depend on the social function: a holder may set a PIN before activation.
# Financial services only depend on the card status here; the bank's own rules and the WRONG_BANK
# check live elsewhere.

_ALL = frozenset(CardService)
_INQUIRY_ONLY = frozenset({CardService.info_inquiry})

_STATUS_SERVICES: dict[CardStatus, frozenset[CardService]] = {
    CardStatus.normal: _ALL - {CardService.loss_release},
    CardStatus.temp_loss: frozenset(
        {CardService.info_inquiry, CardService.loss_release, CardService.financial_loss_report}
    ),
    CardStatus.formal_loss: _INQUIRY_ONLY,
    CardStatus.app_locked: _INQUIRY_ONLY,
    CardStatus.cancelled: _INQUIRY_ONLY,
    CardStatus.sealed: _INQUIRY_ONLY,
}


def service_allowed_in_state(state: CardState, service: CardService) -> bool:
    """Whether the card's state allows `service` at all (else the decision says CARD_STATE)."""
    if service not in _STATUS_SERVICES[state.status]:
        return False
    # `==`, not `is`: callers may pass the plain string value of a card service.
    if service == CardService.activation:
        return state.social_function is SocialFunction.not_enabled
    if service == CardService.password_change:
        return state.pin_state not in LOCKED_PIN_STATES
    if service == CardService.password_unlock:
        return state.pin_state in LOCKED_PIN_STATES
    return True
