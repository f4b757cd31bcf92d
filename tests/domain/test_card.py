import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain import card as c
from app.domain.card import (
    DEFAULT_PIN_LOCK_THRESHOLD,
    NEW_CARD,
    CardState,
    CardStatus,
    PinState,
    SocialFunction,
    service_allowed_in_state,
)
from app.domain.catalogue import FINANCIAL_SERVICES, CardService
from app.domain.errors import DomainError, ErrorCode

S = CardService
ALL_STATES = [
    CardState(status, social, pin, failures)
    for status, social, pin in itertools.product(CardStatus, SocialFunction, PinState)
    for failures in ((3,) if pin is PinState.locked else (0, 2))
]


def state(status=CardStatus.normal, social=SocialFunction.enabled, pin=PinState.set, failures=0) -> CardState:
    return CardState(status, social, pin, failures)


def refused(fn, st_, code=ErrorCode.ILLEGAL_TRANSITION, **kwargs) -> DomainError:
    with pytest.raises(DomainError) as exc:
        fn(st_, **kwargs)
    assert exc.value.code == code
    return exc.value


# --- CardState ------------------------------------------------------------------------------------


def test_card_state_coerces_strings_and_validates():
    s = CardState("normal", "not_enabled", "default")  # type: ignore[arg-type]
    assert s == NEW_CARD
    assert s.status is CardStatus.normal and s.pin_failures == 0
    for bad in (
        dict(status="lost", social_function="enabled", pin_state="set"),
        dict(status=["normal"], social_function="enabled", pin_state="set"),
        dict(status="normal", social_function="on", pin_state="set"),
        dict(status="normal", social_function="enabled", pin_state="blocked"),
        dict(status="normal", social_function="enabled", pin_state="set", pin_failures=-1),
        dict(status="normal", social_function="enabled", pin_state="set", pin_failures="1"),
        dict(status="normal", social_function="enabled", pin_state="set", pin_failures=True),
    ):
        with pytest.raises(DomainError) as exc:
            CardState(**bad)
        assert exc.value.code == ErrorCode.BAD_CARD_STATE


def test_card_state_is_frozen():
    with pytest.raises(AttributeError):
        NEW_CARD.status = CardStatus.cancelled  # type: ignore[misc]


# --- status transitions -----------------------------------------------------------------------------


def test_activate():
    assert c.activate(NEW_CARD).social_function is SocialFunction.enabled
    assert c.activate(NEW_CARD).status is CardStatus.normal
    err = refused(c.activate, c.activate(NEW_CARD), ErrorCode.ALREADY_ACTIVE)
    assert "already enabled" in err.message
    for status in CardStatus:
        if status is not CardStatus.normal:
            err = refused(c.activate, state(status, SocialFunction.not_enabled))
            assert status.value in err.message and "activate" in err.message


def test_temp_loss_and_release():
    lost = c.report_temp_loss(state())
    assert lost.status is CardStatus.temp_loss
    assert c.release_loss(lost) == state()
    for status in CardStatus:
        if status is not CardStatus.normal:
            refused(c.report_temp_loss, state(status))
        if status is not CardStatus.temp_loss:
            refused(c.release_loss, state(status))


def test_formal_loss_is_final():
    assert c.report_formal_loss(state()).status is CardStatus.formal_loss
    assert c.report_formal_loss(state(CardStatus.temp_loss)).status is CardStatus.formal_loss
    err = refused(c.release_loss, state(CardStatus.formal_loss))
    assert "formal_loss" in err.message and "replaced" in err.message
    for status in (CardStatus.formal_loss, CardStatus.app_locked, CardStatus.cancelled, CardStatus.sealed):
        refused(c.report_formal_loss, state(status))


def test_cancel():
    for status in CardStatus:
        if status is CardStatus.cancelled:
            err = refused(c.cancel, state(status))
            assert "cancelled" in err.message
        else:
            assert c.cancel(state(status)).status is CardStatus.cancelled


def test_seal_and_unseal():
    assert c.seal(state()).status is CardStatus.sealed
    assert c.unseal(c.seal(state())) == state()
    for status in CardStatus:
        if status is not CardStatus.normal:
            refused(c.seal, state(status))
        if status is not CardStatus.sealed:
            refused(c.unseal, state(status))


def test_app_lock():
    assert c.lock_app(state()).status is CardStatus.app_locked
    assert c.unlock_app(c.lock_app(state())) == state()
    refused(c.lock_app, state(CardStatus.temp_loss))
    refused(c.unlock_app, state())


def test_transitions_keep_the_other_parts_of_the_state():
    s = state(pin=PinState.locked, failures=3)
    for fn in (c.report_temp_loss, c.report_formal_loss, c.cancel, c.seal, c.lock_app):
        out = fn(s)
        assert (out.social_function, out.pin_state, out.pin_failures) == (
            s.social_function,
            PinState.locked,
            3,
        )


# --- PIN ----------------------------------------------------------------------------------------------


def test_pin_failures_lock_at_threshold():
    s = state(pin=PinState.set)
    s = c.pin_failed(s)
    assert (s.pin_state, s.pin_failures) == (PinState.set, 1)
    s = c.pin_failed(s)
    assert (s.pin_state, s.pin_failures) == (PinState.set, 2)
    s = c.pin_failed(s)
    assert (s.pin_state, s.pin_failures) == (PinState.locked, DEFAULT_PIN_LOCK_THRESHOLD)
    err = refused(c.pin_failed, s, ErrorCode.PIN_LOCKED)
    assert "locked" in err.message


def test_pin_threshold_one_and_ten():
    assert c.pin_failed(NEW_CARD, threshold=1).pin_state is PinState.locked
    s = NEW_CARD
    for _ in range(9):
        s = c.pin_failed(s, threshold=10)
    assert (s.pin_state, s.pin_failures) == (PinState.default, 9)
    assert c.pin_failed(s, threshold=10).pin_state is PinState.locked


def test_lowered_threshold_locks_on_next_failure():
    s = state(failures=4)
    assert c.pin_failed(s, threshold=3).pin_state is PinState.locked


@pytest.mark.parametrize("threshold", [0, 11, -1, 3.0, "3", True, None])
def test_bad_threshold(threshold):
    err = refused(c.pin_failed, state(), ErrorCode.BAD_PIN_LOCK_THRESHOLD, threshold=threshold)
    assert err.field == "pin_lock_threshold"
    with pytest.raises(DomainError):
        c.validate_pin_lock_threshold(threshold)


def test_validate_threshold_accepts_range():
    assert [c.validate_pin_lock_threshold(n) for n in range(1, 11)] == list(range(1, 11))


def test_pin_verified_resets_counter():
    assert c.pin_verified(state(failures=2)).pin_failures == 0
    assert c.pin_verified(state(pin=PinState.default, failures=1)).pin_state is PinState.default
    refused(c.pin_verified, state(pin=PinState.locked, failures=3), ErrorCode.PIN_LOCKED)


def test_pin_changed():
    out = c.pin_changed(state(pin=PinState.default, failures=2))
    assert (out.pin_state, out.pin_failures) == (PinState.set, 0)
    assert c.pin_changed(state(pin=PinState.set)).pin_state is PinState.set
    refused(c.pin_changed, state(pin=PinState.locked, failures=3), ErrorCode.PIN_LOCKED)


def test_pin_reset_works_even_when_locked():
    for pin in PinState:
        # A hard lock only at an identity desk (see the hard lock tests below).
        at_counter = pin is PinState.hard_locked
        out = c.pin_reset(state(pin=pin, failures=3 if pin is PinState.locked else 1), at_counter=at_counter)
        assert (out.pin_state, out.pin_failures) == (PinState.set, 0)


def test_pin_unlock():
    locked = state(pin=PinState.locked, failures=3)
    assert c.pin_unlock(locked, pin_was_set=True) == state(pin=PinState.set, failures=0)
    assert c.pin_unlock(locked, pin_was_set=False) == state(pin=PinState.default, failures=0)
    for pin in (PinState.default, PinState.set):
        err = refused(c.pin_unlock, state(pin=pin), pin_was_set=True)
        assert "locked" in err.message
    with pytest.raises(TypeError):
        c.pin_unlock(locked)  # type: ignore[call-arg]  # the caller must say whether a PIN was set


# --- service_allowed_in_state -----------------------------------------------------------------------


def allowed(s: CardState) -> set[CardService]:
    return {svc for svc in CardService if service_allowed_in_state(s, svc)}


def test_normal_enabled_card_with_set_pin():
    assert allowed(state()) == set(CardService) - {S.activation, S.loss_release, S.password_unlock}


def test_normal_card_refinements():
    assert S.activation in allowed(state(social=SocialFunction.not_enabled))
    locked = allowed(state(pin=PinState.locked, failures=3))
    assert S.password_unlock in locked and S.password_reset in locked
    assert S.password_change not in locked
    assert S.password_change in allowed(state(pin=PinState.default))


def test_loss_and_dead_statuses():
    for s in (state(CardStatus.temp_loss), state(CardStatus.temp_loss, SocialFunction.not_enabled)):
        assert allowed(s) == {S.info_inquiry, S.loss_release, S.financial_loss_report}
    for status in (CardStatus.formal_loss, CardStatus.app_locked, CardStatus.cancelled, CardStatus.sealed):
        for pin in PinState:
            assert allowed(state(status, pin=pin, failures=3 if pin is PinState.locked else 0)) == {
                S.info_inquiry
            }


def test_financial_services_follow_status_only():
    for s in ALL_STATES:
        if s.status is CardStatus.normal:
            assert allowed(s) >= FINANCIAL_SERVICES


def test_plain_string_service_is_understood():
    assert service_allowed_in_state(NEW_CARD, "activation")  # type: ignore[arg-type]
    assert not service_allowed_in_state(c.activate(NEW_CARD), "activation")  # type: ignore[arg-type]
    assert not service_allowed_in_state(state(), "password_unlock")  # type: ignore[arg-type]


# The card services that change the card map to transitions; whenever the state allows the card
# service, the transition must succeed (the decision and the state machine agree) where it is done
# with the holder's identity checked at an identity desk: a hard-locked PIN needs that besides the
# state, and the decision cannot see it (the transition refuses elsewhere, see the hard lock tests).
SERVICE_TRANSITIONS = {
    S.activation: c.activate,
    S.temp_loss_report: c.report_temp_loss,
    S.loss_release: c.release_loss,
    S.password_change: c.pin_changed,
    S.password_reset: lambda s: c.pin_reset(s, at_counter=True),
    S.password_unlock: lambda s: c.pin_unlock(s, pin_was_set=True, identity_verified=True, at_counter=True),
}


@pytest.mark.parametrize("s", ALL_STATES, ids=str)
@pytest.mark.parametrize("service", list(SERVICE_TRANSITIONS), ids=str)
def test_allowed_services_have_working_transitions(s, service):
    transition = SERVICE_TRANSITIONS[service]
    if service_allowed_in_state(s, service):
        transition(s)
    elif service in (S.activation, S.temp_loss_report, S.loss_release):
        with pytest.raises(DomainError):
            transition(s)


# --- property: random walks never reach an inconsistent state ---------------------------------------

ACTIONS = [
    c.activate,
    c.report_temp_loss,
    c.release_loss,
    c.report_formal_loss,
    c.cancel,
    c.seal,
    c.unseal,
    c.lock_app,
    c.unlock_app,
    c.pin_failed,
    c.pin_verified,
    c.pin_changed,
    c.pin_reset,
    lambda s: c.pin_unlock(s, pin_was_set=True),
]


@given(st.lists(st.sampled_from(ACTIONS), max_size=40))
def test_random_walks_keep_invariants(actions):
    s = NEW_CARD
    for action in actions:
        before = s
        try:
            s = action(s)
        except DomainError as err:
            assert err.code in {ErrorCode.ILLEGAL_TRANSITION, ErrorCode.ALREADY_ACTIVE, ErrorCode.PIN_LOCKED}
            continue
        # invariants
        assert (s.pin_state is PinState.locked) == (s.pin_failures >= DEFAULT_PIN_LOCK_THRESHOLD)
        assert s.pin_failures <= DEFAULT_PIN_LOCK_THRESHOLD
        if before.status in (CardStatus.cancelled, CardStatus.formal_loss):
            assert s.status in (before.status, CardStatus.cancelled)  # final statuses never come back
        if before.social_function is SocialFunction.enabled:
            assert s.social_function is SocialFunction.enabled  # nothing disables the social function


def test_replace_keeps_validation():
    with pytest.raises(DomainError):
        replace(NEW_CARD, pin_failures=-1)


# --- hard locks ---------------------------------------------------------------------------------

RULE = c.HardLockRule(after=3, window=timedelta(hours=24))
T0 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
LOCKED = CardState(CardStatus.normal, SocialFunction.enabled, PinState.locked, 5)


def test_the_third_lock_within_the_window_is_hard():
    locks = c.PinLocks()
    state, locks = c.lock_counted(LOCKED, locks, T0, RULE)
    assert (state.pin_state, locks) == (PinState.locked, c.PinLocks(1, T0))
    state, locks = c.lock_counted(LOCKED, locks, T0 + timedelta(hours=1), RULE)
    assert (state.pin_state, locks.count) == (PinState.locked, 2)
    state, locks = c.lock_counted(LOCKED, locks, T0 + timedelta(hours=23), RULE)
    assert (state.pin_state, locks.count) == (PinState.hard_locked, 3)


def test_a_lock_after_the_window_starts_a_new_one():
    state, locks = c.lock_counted(LOCKED, c.PinLocks(2, T0), T0 + timedelta(hours=24), RULE)
    assert (state.pin_state, locks) == (PinState.locked, c.PinLocks(1, T0 + timedelta(hours=24)))


def test_a_hard_lock_is_lifted_only_at_an_identity_desk_with_the_identity_checked():
    hard = replace(LOCKED, pin_state=PinState.hard_locked)
    for verified, desk in ((False, False), (True, False), (False, True)):
        with pytest.raises(DomainError) as err:
            c.pin_unlock(hard, pin_was_set=True, identity_verified=verified, at_counter=desk)
        assert err.value.code == ErrorCode.PIN_LOCKED
    unlocked = c.pin_unlock(hard, pin_was_set=True, identity_verified=True, at_counter=True)
    assert (unlocked.pin_state, unlocked.pin_failures) == (PinState.set, 0)
    with pytest.raises(DomainError):
        c.pin_reset(hard)
    assert c.pin_reset(hard, at_counter=True).pin_state is PinState.set
    # Nothing else gets past a hard lock.
    for step in (c.pin_verified, c.pin_changed, c.pin_failed):
        with pytest.raises(DomainError):
            step(hard)
    assert not c.service_allowed_in_state(hard, CardService.password_change)
    assert c.service_allowed_in_state(hard, CardService.password_unlock)
