"""PIN changes over HTTP: argon2 hashes only once set, weak PINs refused, wrong PINs counted up to the
department's lock threshold, exactly, even under 50 concurrent calls on one card."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from sqlmodel import select

from app.domain.pin import DEFAULT_PIN
from app.store.tables import Card
from tests.api.partner_world import (
    GD,
    GZ,
    HALL,
    HOTLINE,
    ICBC,
    TH,
    assert_no_secrets,
    card_row_of,
    error,
    events,
    grant,
    pin_change_input,
    until_permitted,
)

CHANGE = "mutation($i: ChangePasswordInput!) { changePassword(input: $i) { replayed card { pinState } } }"
RESET = "mutation($i: ResetPasswordInput!) { resetPassword(input: $i) { card { pinState } } }"
UNLOCK = "mutation($i: UnlockPasswordInput!) { unlockPassword(input: $i) { card { pinState } } }"
TH_THRESHOLD = 5  # pin_lock_threshold of Tianhe in tenants/guangdong.toml
NEW_PIN, WRONG_PIN = "258036", "975310"


async def hall_may_manage_pins(world) -> None:
    for service in ("password_change", "password_reset", "password_unlock"):
        await grant(world.sessions, service, tenant=GZ, outlet=HALL)
        await until_permitted(world.partner, HALL, service)


async def test_the_first_change_replaces_the_default_pin_with_an_argon2_hash(world):
    await hall_may_manage_pins(world)
    card = world.cards["th"]
    assert (await card_row_of(world.sessions, card)).pin_hash is None
    body = await world.partner.call(HALL, CHANGE, pin_change_input(card, DEFAULT_PIN, NEW_PIN, "pin-000001"))
    assert body["data"]["changePassword"]["card"] == {"pinState": "set"}
    row = await card_row_of(world.sessions, card)
    assert row.pin_hash.startswith("$argon2id$") and NEW_PIN not in row.pin_hash
    # The default no longer works once a PIN is set.
    body = await world.partner.call(HALL, CHANGE, pin_change_input(card, DEFAULT_PIN, "147036", "pin-000002"))
    assert error(body) == {"code": "BAD_INPUT", "field": "oldPin", "reason": "WRONG_PIN", "attemptsLeft": 4}
    await assert_no_secrets(world.sessions, world.cards, NEW_PIN, DEFAULT_PIN, "147036")


async def test_weak_pins_and_unverified_resets_are_refused(world):
    await hall_may_manage_pins(world)
    card = world.cards["th"]
    for weak, reason in (
        ("111111", "WEAK_PIN"),
        ("345678", "WEAK_PIN"),
        (DEFAULT_PIN, "WEAK_PIN"),
        ("12a456", "BAD_PIN"),
    ):
        body = await world.partner.call(
            HALL, CHANGE, pin_change_input(card, DEFAULT_PIN, weak, "pin-weak-01")
        )
        # The field as the caller named it (newPin), not the domain's word for it (pin).
        assert (error(body)["code"], error(body)["reason"], error(body)["field"]) == (
            "BAD_INPUT",
            reason,
            "newPin",
        )
    reset = {
        "i": {
            "cardNumber": card.card_number,
            "idNumber": card.id_number,
            "identityVerified": False,
            "newPin": NEW_PIN,
            "idempotencyKey": "reset-0001",
        }
    }
    assert error(await world.partner.call(HALL, RESET, reset))["field"] == "identityVerified"
    assert (await card_row_of(world.sessions, card)).pin_state == "default"


async def test_a_replayed_wrong_pin_is_counted_once(world):
    await hall_may_manage_pins(world)
    card = world.cards["th"]
    first = await world.partner.call(HALL, CHANGE, pin_change_input(card, WRONG_PIN, NEW_PIN, "pin-retry-1"))
    again = await world.partner.call(HALL, CHANGE, pin_change_input(card, WRONG_PIN, NEW_PIN, "pin-retry-1"))
    assert (
        error(first)
        == error(again)
        == {"code": "BAD_INPUT", "field": "oldPin", "reason": "WRONG_PIN", "attemptsLeft": 4}
    )
    assert (await card_row_of(world.sessions, card)).pin_failures == 1
    other = await world.partner.call(HALL, CHANGE, pin_change_input(card, WRONG_PIN, "147036", "pin-retry-1"))
    assert error(other)["code"] == "CONFLICT"


async def test_fifty_concurrent_wrong_pins_lock_exactly_at_the_threshold(world):
    await hall_may_manage_pins(world)
    card = world.cards["th"]
    body = await world.partner.call(
        HALL, CHANGE, pin_change_input(card, DEFAULT_PIN, NEW_PIN, "pin-set-0001")
    )
    assert "errors" not in body
    calls = [
        world.partner.call(HALL, CHANGE, pin_change_input(card, WRONG_PIN, "147036", f"pin-burst-{n:03d}"))
        for n in range(50)
    ]
    answers = [error(body) for body in await asyncio.gather(*calls)]
    counted = sorted(a["attemptsLeft"] for a in answers if a["code"] == "BAD_INPUT")
    assert counted == list(range(TH_THRESHOLD))  # 4, 3, 2, 1 left, then 0: locked
    assert [a for a in answers if a["code"] != "BAD_INPUT"] == [
        {"code": "FORBIDDEN", "reason": "CARD_STATE"}
    ] * 45
    row = await card_row_of(world.sessions, card)
    assert (row.pin_state, row.pin_failures) == ("locked", TH_THRESHOLD)
    pin_events = await events(world.sessions, tenant=TH, action="card.pin_change")
    assert sum(e.decision == "allow" for e in pin_events) == 1 + TH_THRESHOLD
    assert sum(e.decision == "deny" for e in pin_events) == 45
    # Unlocking keeps the holder's own PIN (not the default), and it works again.
    answer = await world.partner.call(HALL, UNLOCK, unlock(card, "unlock-0001"))
    assert answer["data"]["unlockPassword"]["card"]["pinState"] == "set"
    body = await world.partner.call(HALL, CHANGE, pin_change_input(card, NEW_PIN, "147036", "pin-after-01"))
    assert body["data"]["changePassword"]["card"]["pinState"] == "set"
    await assert_no_secrets(world.sessions, world.cards, NEW_PIN, WRONG_PIN, "147036")


async def test_a_reset_unlocks_with_a_new_pin(world):
    await hall_may_manage_pins(world)
    card = world.cards["th2"]
    for n in range(TH_THRESHOLD):
        await world.partner.call(
            HALL, CHANGE, pin_change_input(card, WRONG_PIN, NEW_PIN, f"pin-lock-{n:03d}")
        )
    assert (await card_row_of(world.sessions, card)).pin_state == "locked"
    reset = {
        "i": {
            "cardNumber": card.card_number,
            "idNumber": card.id_number,
            "identityVerified": True,
            "newPin": NEW_PIN,
            "idempotencyKey": "reset-0002",
        }
    }
    assert (await world.partner.call(HALL, RESET, reset))["data"]["resetPassword"]["card"][
        "pinState"
    ] == "set"
    row = await card_row_of(world.sessions, card)
    assert (row.pin_failures, row.pin_hash.startswith("$argon2id$")) == (0, True)


STATUS = (
    'query($n: String!, $id: String!) { cardStatus(cardNumber: $n, idNumber: $id, purpose: "password_unlock")'
    " { pinState } }"
)


def unlock(card, key: str, identity_verified: bool = False) -> dict:
    return {
        "i": {
            "cardNumber": card.card_number,
            "idNumber": card.id_number,
            "identityVerified": identity_verified,
            "idempotencyKey": key,
        }
    }


async def lock_by_guessing(world, outlet: str, card, round_: int) -> dict:
    """Wrong PINs from `outlet` until the PIN locks; returns the error of the failure that locked it."""
    for n in range(TH_THRESHOLD):
        body = await world.partner.call(
            outlet, CHANGE, pin_change_input(card, f"{round_:02d}{n:04d}", NEW_PIN, f"guess-{round_}-{n}")
        )
        assert "attemptsLeft" in error(body), body
        if error(body)["attemptsLeft"] == 0:
            return error(body)
    raise AssertionError("the PIN never locked")


async def test_guessing_through_lock_and_unlock_ends_in_a_hard_lock(world, sessions):
    """The security review (issue 11, item 7): an outlet holding password_change and password_unlock
    guessed a 6-digit PIN in 123 calls, unlocking whenever the PIN locked."""
    for service in ("password_change", "password_unlock"):
        await grant(world.sessions, service, tenant=GZ, outlet=ICBC)
        await until_permitted(world.partner, ICBC, service)
    await grant(world.sessions, "password_unlock", tenant=GZ, outlet=HALL)
    await until_permitted(world.partner, HALL, "password_unlock")
    card = world.cards["th"]
    # Locks one and two are unlocked as before.
    for round_ in range(2):
        assert (await lock_by_guessing(world, ICBC, card, round_))["reason"] == "PIN_LOCKED"
        body = await world.partner.call(ICBC, UNLOCK, unlock(card, f"unlock-{round_}"))
        assert body["data"]["unlockPassword"]["card"]["pinState"] == "default", body
    # The third lock within 24 hours is hard: the bank outlet can no longer unlock it, even claiming
    # to have checked the holder's identity, and no more guesses are counted.
    hard = await lock_by_guessing(world, ICBC, card, 2)
    assert (hard["reason"], hard["attemptsLeft"]) == ("PIN_HARD_LOCKED", 0)
    for n, verified in enumerate((False, True)):
        refused = await world.partner.call(ICBC, UNLOCK, unlock(card, f"unlock-bank-{n}", verified))
        assert (error(refused)["code"], error(refused)["reason"]) == ("FORBIDDEN", "CARD_STATE")
        assert "HRSS hall" in refused["errors"][0]["message"]
    guess = await world.partner.call(
        ICBC, CHANGE, pin_change_input(card, "000000", NEW_PIN, "guess-after-hard")
    )
    assert error(guess)["reason"] == "CARD_STATE"
    # Visible in cardStatus.
    status = await world.partner.call(HALL, STATUS, {"n": card.card_number, "id": card.id_number})
    assert status["data"]["cardStatus"]["pinState"] == "hard_locked", status
    # The HRSS hall unlocks it, only with the holder's identity checked; the counting starts afresh.
    refused = await world.partner.call(HALL, UNLOCK, unlock(card, "unlock-hall-0"))
    assert error(refused)["reason"] == "CARD_STATE"
    body = await world.partner.call(HALL, UNLOCK, unlock(card, "unlock-hall-1", True))
    assert body["data"]["unlockPassword"]["card"]["pinState"] == "default", body
    row = await card_row_of(world.sessions, card)
    assert (row.pin_state, row.pin_failures, row.pin_locks, row.pin_locks_since) == ("default", 0, 0, None)
    # Audited: each lock, the hard lock, its lifting.
    changes = await events(world.sessions, tenant=TH, action="card.pin_change", decision="allow")
    locked = [json.loads(e.detail).get("pin_locked") for e in changes]
    assert [x for x in locked if x] == ["locked", "locked", "hard"]
    unlocks = await events(world.sessions, tenant=TH, action="card.pin_unlock", decision="allow")
    assert json.loads(unlocks[-1].detail)["hard_lock_lifted"] is True
    assert json.loads(unlocks[-1].detail)["outlet_kind"] == "hrss_hall"


async def test_locks_outside_the_window_do_not_add_up(world, sessions):
    for service in ("password_change", "password_unlock"):
        await grant(world.sessions, service, tenant=GZ, outlet=ICBC)
        await until_permitted(world.partner, ICBC, service)
    card = world.cards["th2"]
    for round_ in range(2):
        await lock_by_guessing(world, ICBC, card, round_)
        await world.partner.call(ICBC, UNLOCK, unlock(card, f"window-unlock-{round_}"))
    # The window began 25 hours ago: the next lock starts a new one instead of hard-locking.
    async with sessions() as session, session.begin():
        row = (await session.exec(select(Card).where(Card.card_number == card.card_number))).one()
        row.pin_locks_since = datetime.now(UTC) - timedelta(hours=25)
    assert (await lock_by_guessing(world, ICBC, card, 2))["reason"] == "PIN_LOCKED"
    row = await card_row_of(world.sessions, card)
    assert (row.pin_state, row.pin_locks) == ("locked", 1)


async def test_the_12333_desk_may_lift_a_hard_lock(world, sessions):
    await grant(world.sessions, "password_unlock", tenant=GD, outlet=HOTLINE)
    await until_permitted(world.partner, HOTLINE, "password_unlock")
    card = world.cards["th"]
    async with sessions() as session, session.begin():
        row = (await session.exec(select(Card).where(Card.card_number == card.card_number))).one()
        row.pin_state, row.pin_locks, row.pin_locks_since = "hard_locked", 3, datetime.now(UTC)
    body = await world.partner.call(HOTLINE, UNLOCK, unlock(card, "desk-unlock-1", True))
    assert body["data"]["unlockPassword"]["card"]["pinState"] == "default", body
