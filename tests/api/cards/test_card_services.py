"""Partner card mutations over HTTP: the seed's activation channels end to end, refusals with their
codes that change nothing but the audit trail, and idempotent retries."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.store.tables import Card, IdempotencyRecord
from tests.api.partner_world import (
    CCB,
    FIN,
    GD,
    GRASSROOTS,
    GZ,
    HALL,
    HOSPITAL,
    HOTLINE,
    ICBC,
    PHARMACY,
    TH,
    assert_no_secrets,
    card_row_of,
    error,
    events,
    grant,
    until_permitted,
)

ACTIVATE = (
    "mutation($i: ActivateCardInput!) { activateCard(input: $i) { replayed card { status socialFunction"
    " activationChannel pinState } } }"
)
BANK = "mutation($i: RecordBankServiceInput!) { recordBankService(input: $i) { card { financialFunction } } }"
LOSS = {
    name: f"mutation($i: CardServiceInput!) {{ {name}(input: $i) {{ card {{ status }} }} }}"
    for name in ("reportTemporaryLoss", "releaseLoss", "reportFormalLoss")
}


def activation(card, channel: str, key: str) -> dict:
    return {
        "i": {
            "cardNumber": card.card_number,
            "idNumber": card.id_number,
            "channel": channel,
            "idempotencyKey": key,
        }
    }


async def snapshot(sessions) -> list:
    async with sessions() as session:
        cards = (await session.exec(select(Card).order_by(Card.id))).all()
        records = (await session.exec(select(IdempotencyRecord))).all()
    return [c.model_dump() for c in cards] + [r.model_dump() for r in records]


async def refused_without_change(world, outlet, query, variables, expected: dict, action: str, reason: str):
    """The call is refused with `expected`, changes no card, and leaves exactly one denial event."""
    before, before_events = await snapshot(world.sessions), len(await events(world.sessions))
    body = await world.partner.call(outlet, query, variables)
    assert error(body) == expected
    assert await snapshot(world.sessions) == before
    added = (await events(world.sessions))[before_events:]
    assert [(e.action, e.decision, e.reason) for e in added] == [(action, "deny", reason)]
    return added[0]


async def test_a_designated_hospital_activates_on_first_use_without_a_grant_and_retries_are_replayed(world):
    card = world.cards["th"]
    body = await world.partner.call(HOSPITAL, ACTIVATE, activation(card, "hospital_first_use", "visit-0001"))
    assert body["data"]["activateCard"] == {
        "replayed": False,
        "card": {
            "status": "normal",
            "socialFunction": "enabled",
            "activationChannel": "hospital_first_use",
            "pinState": "default",
        },
    }
    again = await world.partner.call(HOSPITAL, ACTIVATE, activation(card, "hospital_first_use", "visit-0001"))
    assert again["data"]["activateCard"]["replayed"] is True
    assert again["data"]["activateCard"]["card"] == body["data"]["activateCard"]["card"]
    [event] = await events(world.sessions, action="card.activate")
    assert (event.tenant, event.decision, event.actor) == (TH, "allow", f"outlet:{HOSPITAL}")
    assert '"before"' in event.detail and "builtin:" in event.detail
    # The same key with other input is a conflict, not a replay, and acts on nothing.
    other = world.cards["th2"]
    before = await snapshot(world.sessions)
    conflict = await world.partner.call(
        HOSPITAL, ACTIVATE, activation(other, "hospital_first_use", "visit-0001")
    )
    assert error(conflict)["code"] == "CONFLICT"
    assert await snapshot(world.sessions) == before
    # Another outlet's key has its own key space: it is judged as itself (it holds nothing: NOT_FOUND).
    foreign = await world.partner.call(
        GRASSROOTS, ACTIVATE, activation(card, "grassroots_platform", "visit-0001")
    )
    assert error(foreign) == {"code": "NOT_FOUND"}
    # A second activation with a fresh key: the card state refuses it.
    await refused_without_change(
        world,
        HOSPITAL,
        ACTIVATE,
        activation(card, "hospital_first_use", "visit-0002"),
        {"code": "FORBIDDEN", "reason": "CARD_STATE"},
        "card.activate",
        "CARD_STATE",
    )
    await assert_no_secrets(world.sessions, world.cards)


# Every activation channel of the seed, from an outlet of the kind it belongs to. Hospitals and
# pharmacies activate on first use by statute; the other kinds need an activation grant.
CHANNELS = [
    ("hospital_first_use", HOSPITAL, False),
    ("pharmacy_first_use", PHARMACY, False),
    ("bank_counter", ICBC, True),
    ("hotline_12333", HOTLINE, True),
    ("hrss_window", HALL, True),
    ("grassroots_platform", GRASSROOTS, True),
]


@pytest.mark.parametrize(("channel", "outlet", "needs_grant"), CHANNELS, ids=[c[0] for c in CHANNELS])
async def test_each_seed_channel_activates_a_card_end_to_end(world, channel, outlet, needs_grant):
    card = world.cards["th"]
    grant_ids = []
    if needs_grant:
        grant_ids.append(await grant(world.sessions, "activation", tenant=GD, outlet=outlet))
    await until_permitted(world.partner, outlet, "activation")
    body = await world.partner.call(outlet, ACTIVATE, activation(card, channel, f"{channel}-01"))
    assert body["data"]["activateCard"]["card"] == {
        "status": "normal",
        "socialFunction": "enabled",
        "activationChannel": channel,
        "pinState": "default",
    }
    stored = await card_row_of(world.sessions, card)
    assert (stored.social_function, stored.activation_channel) == ("enabled", channel)
    [event] = await events(world.sessions, action="card.activate", decision="allow")
    assert (event.tenant, event.actor) == (TH, f"outlet:{outlet}")
    assert all(f'"{gid}"' in event.detail for gid in grant_ids) and (grant_ids or "builtin:" in event.detail)
    await assert_no_secrets(world.sessions, world.cards)


async def test_a_channel_that_does_not_fit_the_outlet_kind_is_refused(world):
    event = await refused_without_change(
        world,
        HOSPITAL,
        ACTIVATE,
        activation(world.cards["th"], "bank_counter", "visit-0003"),
        {"code": "FORBIDDEN", "reason": "CHANNEL_MISMATCH"},
        "card.activate",
        "CHANNEL_MISMATCH",
    )
    assert event.tenant == TH and "cannot report activation" in event.detail


async def test_a_grassroots_platform_needs_a_grant_to_activate(world):
    card = world.cards["th"]
    await grant(world.sessions, "info_inquiry", outlet=GRASSROOTS)
    await until_permitted(world.partner, GRASSROOTS, "info_inquiry")
    await refused_without_change(
        world,
        GRASSROOTS,
        ACTIVATE,
        activation(card, "grassroots_platform", "gr-000001"),
        {"code": "FORBIDDEN", "reason": "NO_GRANT"},
        "card.activate",
        "NO_GRANT",
    )
    gid = await grant(world.sessions, "activation", tenant=TH, kind="grassroots_platform")
    await until_permitted(world.partner, GRASSROOTS, "activation")
    body = await world.partner.call(
        GRASSROOTS, ACTIVATE, activation(card, "grassroots_platform", "gr-000002")
    )
    assert body["data"]["activateCard"]["card"]["activationChannel"] == "grassroots_platform"
    [event] = await events(world.sessions, action="card.activate", decision="allow")
    assert f'"grant_ids":["{gid}"]' in event.detail


async def test_the_cards_own_bank_reports_financial_activation(world):
    card = world.cards["th"]
    await grant(world.sessions, "financial_activation", tenant=GD, kind="bank_outlet")
    await until_permitted(world.partner, ICBC, "financial_activation")

    def report(key: str, **over) -> dict:
        fields = {
            "cardSerial": card.card_serial,
            "idNumber": card.id_number,
            "bankCardNumber": card.bank_card_number,
        }
        return {"i": {**fields, **over, "idempotencyKey": key}}

    body = await world.partner.call(ICBC, FIN, report("sync-000001"))
    result = body["data"]["reportFinancialActivation"]
    assert result["card"]["socialFunction"] == "enabled"
    assert result["card"]["activationChannel"] == "bank_financial_sync"
    assert result["card"]["financialFunction"] == "active"
    assert card.bank_card_number not in repr(body)
    # The bank sends the sync again under a new key: already active is success.
    again = await world.partner.call(ICBC, FIN, report("sync-000002"))
    assert again["data"]["reportFinancialActivation"]["replayed"] is False
    assert again["data"]["reportFinancialActivation"]["card"]["socialFunction"] == "enabled"
    # Another bank's outlet deals with such cards (the grant is to every bank outlet): WRONG_BANK.
    await refused_without_change(
        world,
        CCB,
        FIN,
        report("sync-000003"),
        {"code": "FORBIDDEN", "reason": "WRONG_BANK"},
        "card.financial_activation",
        "WRONG_BANK",
    )
    # All three identifiers must match: another (valid) bank card number finds no card.
    other = world.cards["th2"].bank_card_number
    body = await world.partner.call(ICBC, FIN, report("sync-000004", bankCardNumber=other))
    assert error(body) == {"code": "NOT_FOUND"}
    await assert_no_secrets(world.sessions, world.cards)


async def test_bank_services_only_at_the_cards_own_bank(world):
    card = world.cards["th_ccb"]
    await grant(world.sessions, "financial_loss_report", tenant=GZ, kind="bank_outlet")
    await until_permitted(world.partner, CCB, "financial_loss_report")
    variables = {
        "i": {
            "service": "financial_loss_report",
            "cardSerial": card.card_serial,
            "idNumber": card.id_number,
            "idempotencyKey": "bank-000001",
        }
    }
    body = await world.partner.call(CCB, BANK, variables)
    assert body["data"]["recordBankService"]["card"]["financialFunction"] == "loss_reported"
    await refused_without_change(
        world,
        ICBC,
        BANK,
        {"i": {**variables["i"], "idempotencyKey": "bank-000002"}},
        {"code": "FORBIDDEN", "reason": "WRONG_BANK"},
        "card.bank.financial_loss_report",
        "WRONG_BANK",
    )
    not_bank = await world.partner.call(CCB, BANK, {"i": {**variables["i"], "service": "activation"}})
    assert error(not_bank)["field"] == "service"


async def test_loss_reports_and_the_states_they_leave(world):
    card = world.cards["gz"]
    for service in ("temp_loss_report", "loss_release"):
        await grant(world.sessions, service, tenant=GD, outlet=HOTLINE)
        await until_permitted(world.partner, HOTLINE, service)

    async def call(name: str, key: str) -> dict:
        return await world.partner.call(
            HOTLINE,
            LOSS[name],
            {"i": {"cardNumber": card.card_number, "idNumber": card.id_number, "idempotencyKey": key}},
        )

    assert (await call("reportTemporaryLoss", "loss-0001"))["data"]["reportTemporaryLoss"]["card"][
        "status"
    ] == "temp_loss"
    assert (await call("releaseLoss", "loss-0002"))["data"]["releaseLoss"]["card"]["status"] == "normal"
    assert (await call("reportTemporaryLoss", "loss-0003"))["data"]["reportTemporaryLoss"]["card"][
        "status"
    ] == "temp_loss"
    assert (await call("reportFormalLoss", "loss-0004"))["data"]["reportFormalLoss"]["card"][
        "status"
    ] == "formal_loss"
    variables = {
        "i": {"cardNumber": card.card_number, "idNumber": card.id_number, "idempotencyKey": "loss-0005"}
    }
    await refused_without_change(
        world,
        HOTLINE,
        LOSS["releaseLoss"],
        variables,
        {"code": "FORBIDDEN", "reason": "CARD_STATE"},
        "card.release_loss",
        "CARD_STATE",
    )
    await refused_without_change(
        world,
        HOSPITAL,
        ACTIVATE,
        activation(card, "hospital_first_use", "loss-0006"),
        {"code": "FORBIDDEN", "reason": "CARD_STATE"},
        "card.activate",
        "CARD_STATE",
    )


async def test_a_cancelled_card_is_not_activated(world):
    await refused_without_change(
        world,
        PHARMACY,
        ACTIVATE,
        activation(world.cards["cancelled"], "pharmacy_first_use", "pharm-0001"),
        {"code": "FORBIDDEN", "reason": "CARD_STATE"},
        "card.activate",
        "CARD_STATE",
    )


async def test_bad_input_is_refused_before_anything_happens(world):
    card = world.cards["th"]
    for variables, field in (
        (activation(card, "by_pigeon", "visit-0009"), "channel"),
        (activation(card, "hospital_first_use", "short"), "idempotencyKey"),
        (activation(card, "bank_financial_sync", "visit-0010"), "channel"),
    ):
        body = await world.partner.call(HOSPITAL, ACTIVATE, variables)
        assert (error(body)["code"], error(body)["field"]) == ("BAD_INPUT", field)
    assert (await card_row_of(world.sessions, card)).social_function == "not_enabled"
