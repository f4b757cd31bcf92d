"""PIN changes over HTTP: argon2 hashes only once set, weak PINs refused, wrong PINs counted up to the
department's lock threshold, exactly, even under 50 concurrent calls on one card."""

from __future__ import annotations

import asyncio

import pytest

from app.domain.pin import DEFAULT_PIN
from tests.api.partner_world import (
    GZ,
    HALL,
    TH,
    assert_no_secrets,
    card_row_of,
    error,
    events,
    grant,
    open_world,
    until_permitted,
)


@pytest.fixture
async def world(db_url, sessions, tenants_dir):
    async with open_world(db_url, sessions, tenants_dir) as opened:
        yield opened


CHANGE = "mutation($i: ChangePasswordInput!) { changePassword(input: $i) { replayed card { pinState } } }"
RESET = "mutation($i: ResetPasswordInput!) { resetPassword(input: $i) { card { pinState } } }"
UNLOCK = "mutation($i: CardServiceInput!) { unlockPassword(input: $i) { card { pinState } } }"
TH_THRESHOLD = 5  # pin_lock_threshold of Tianhe in tenants/guangdong.toml
NEW_PIN, WRONG_PIN = "258036", "975310"


def change(card, old: str, new: str, key: str) -> dict:
    return {
        "i": {
            "cardNumber": card.card_number,
            "idNumber": card.id_number,
            "oldPin": old,
            "newPin": new,
            "idempotencyKey": key,
        }
    }


async def hall_may_manage_pins(world) -> None:
    for service in ("password_change", "password_reset", "password_unlock"):
        await grant(world.sessions, service, tenant=GZ, outlet=HALL)
        await until_permitted(world.partner, HALL, service)


async def test_the_first_change_replaces_the_default_pin_with_an_argon2_hash(world):
    await hall_may_manage_pins(world)
    card = world.cards["th"]
    assert (await card_row_of(world.sessions, card)).pin_hash is None
    body = await world.partner.call(HALL, CHANGE, change(card, DEFAULT_PIN, NEW_PIN, "pin-000001"))
    assert body["data"]["changePassword"]["card"] == {"pinState": "set"}
    row = await card_row_of(world.sessions, card)
    assert row.pin_hash.startswith("$argon2id$") and NEW_PIN not in row.pin_hash
    # The default no longer works once a PIN is set.
    body = await world.partner.call(HALL, CHANGE, change(card, DEFAULT_PIN, "147036", "pin-000002"))
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
        body = await world.partner.call(HALL, CHANGE, change(card, DEFAULT_PIN, weak, "pin-weak-01"))
        assert (error(body)["code"], error(body)["reason"]) == ("BAD_INPUT", reason)
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
    first = await world.partner.call(HALL, CHANGE, change(card, WRONG_PIN, NEW_PIN, "pin-retry-1"))
    again = await world.partner.call(HALL, CHANGE, change(card, WRONG_PIN, NEW_PIN, "pin-retry-1"))
    assert (
        error(first)
        == error(again)
        == {"code": "BAD_INPUT", "field": "oldPin", "reason": "WRONG_PIN", "attemptsLeft": 4}
    )
    assert (await card_row_of(world.sessions, card)).pin_failures == 1
    other = await world.partner.call(HALL, CHANGE, change(card, WRONG_PIN, "147036", "pin-retry-1"))
    assert error(other)["code"] == "CONFLICT"


async def test_fifty_concurrent_wrong_pins_lock_exactly_at_the_threshold(world):
    await hall_may_manage_pins(world)
    card = world.cards["th"]
    body = await world.partner.call(HALL, CHANGE, change(card, DEFAULT_PIN, NEW_PIN, "pin-set-0001"))
    assert "errors" not in body
    calls = [
        world.partner.call(HALL, CHANGE, change(card, WRONG_PIN, "147036", f"pin-burst-{n:03d}"))
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
    unlock = {
        "i": {"cardNumber": card.card_number, "idNumber": card.id_number, "idempotencyKey": "unlock-0001"}
    }
    assert (await world.partner.call(HALL, UNLOCK, unlock))["data"]["unlockPassword"]["card"][
        "pinState"
    ] == "set"
    body = await world.partner.call(HALL, CHANGE, change(card, NEW_PIN, "147036", "pin-after-01"))
    assert body["data"]["changePassword"]["card"]["pinState"] == "set"
    await assert_no_secrets(world.sessions, world.cards, NEW_PIN, WRONG_PIN, "147036")


async def test_a_reset_unlocks_with_a_new_pin(world):
    await hall_may_manage_pins(world)
    card = world.cards["th2"]
    for n in range(TH_THRESHOLD):
        await world.partner.call(HALL, CHANGE, change(card, WRONG_PIN, NEW_PIN, f"pin-lock-{n:03d}"))
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
