"""cardStatus and myPermissions over HTTP with partner keys: a card is found by the keyed hash of the
holder's ID number plus its card number, every read is audited, and a card the outlet may not deal
with looks exactly like a card that does not exist."""

from __future__ import annotations

import base64
import random
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from app.ops.demo.generate import DemoCard
from app.ops.tenants.apply import apply_tenant_files
from app.settings import Settings, resolve_keys
from app.store.crypto import FieldCipher, secret_hash
from app.store.tables import PartnerKey
from app.web import create_app
from tests.api.partner_world import (
    GD,
    GRASSROOTS,
    GZ,
    HOSPITAL,
    PERMISSIONS,
    TH,
    Partner,
    assert_no_secrets,
    error,
    events,
    grant,
    insert_cards,
    make_card,
    new_key,
    until_permitted,
)
from tests.livesrv import serve

STATUS = (
    'query($c: String!, $i: String!, $p: String! = "info_inquiry") { cardStatus(cardNumber: $c,'
    " idNumber: $i, purpose: $p) { cardNumber cardSerial issuingTenant serviceBank status socialFunction"
    " activationChannel pinState financialFunction idNumberMasked bankCardMasked } }"
)


def status_vars(card: DemoCard, **more) -> dict:
    return {"c": card.card_number, "i": card.id_number, **more}


# --- tests ----------------------------------------------------------------------------------------


async def test_an_outlet_reads_a_card_it_may_serve_and_the_read_is_audited(world):
    card = world.cards["th"]
    body = await world.partner.call(HOSPITAL, STATUS, status_vars(card, p="activation"))
    status = body["data"]["cardStatus"]
    assert status["issuingTenant"] == TH and status["serviceBank"] == "102"
    assert status["status"] == "normal" and status["socialFunction"] == "not_enabled"
    assert status["pinState"] == "default"
    assert status["idNumberMasked"] == card.id_number[:4] + "*" * 10 + card.id_number[-4:]
    assert status["bankCardMasked"].endswith(card.bank_card_number[-4:]) and "*" in status["bankCardMasked"]
    assert card.id_number not in repr(body) and card.bank_card_number not in repr(body)
    [read] = await events(world.sessions, action="card.status")
    assert (read.tenant, read.decision, read.actor) == (TH, "allow", f"outlet:{HOSPITAL}")
    assert "builtin:" in read.detail and "activation" in read.detail
    await assert_no_secrets(world.sessions, world.cards)


async def test_cards_are_found_by_the_keys_in_the_apps_own_settings(db_url, sessions, tenants_dir):
    """An app created with keys in its settings, not the environment's, finds cards protected with them."""
    own = {
        name: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        for name in ("data_key", "lookup_key")
    }
    settings = Settings(database_url=db_url, **own)
    await apply_tenant_files(sessions, tenants_dir)
    card = make_card(random.Random(8), TH, 8)
    await insert_cards(sessions, [card], cipher=FieldCipher(*resolve_keys(settings)))
    keys = {HOSPITAL: await new_key(sessions, HOSPITAL)}
    with serve(create_app(settings)) as base:
        body = await Partner(base, keys).call(HOSPITAL, STATUS, status_vars(card, p="activation"))
    assert body["data"]["cardStatus"]["cardNumber"] == card.card_number


async def test_a_wrong_check_character_is_bad_input(world):
    card = world.cards["th"]
    last = card.id_number[-1]
    wrong = card.id_number[:-1] + ("0" if last != "0" else "1")
    body = await world.partner.call(HOSPITAL, STATUS, status_vars(card, i=wrong))
    assert error(body) == {"code": "BAD_INPUT", "field": "idNumber", "reason": "BAD_ID_NUMBER"}
    assert await events(world.sessions, action="card.status") == []


async def test_unknown_cards_and_mismatched_pairs_are_not_found_and_audited_in_the_national_chain(world):
    a, b = world.cards["th"], world.cards["th2"]
    stranger = make_card(random.Random(99), TH, 77)
    for variables in (status_vars(a, c=b.card_number), status_vars(stranger)):
        body = await world.partner.call(HOSPITAL, STATUS, {**variables, "p": "activation"})
        assert error(body)["code"] == "NOT_FOUND" and body["data"] is None
    probes = await events(world.sessions, action="card.status")
    assert [(e.tenant, e.decision, e.reason) for e in probes] == [("cn", "deny", "NOT_FOUND")] * 2
    assert '"matched":false' in probes[0].detail
    await assert_no_secrets(world.sessions, {**world.cards, "x": stranger})


async def test_a_card_the_outlet_holds_nothing_on_looks_like_no_card(world):
    """The grassroots platform holds no grant at all: the same NOT_FOUND as for an unknown card, but
    the audit event in the card's chain says it was the engine's NO_GRANT."""
    body = await world.partner.call(GRASSROOTS, STATUS, status_vars(world.cards["th"]))
    assert error(body) == {"code": "NOT_FOUND"}
    [event] = await events(world.sessions, action="card.status")
    assert (event.tenant, event.decision, event.reason) == (TH, "deny", "NO_GRANT")
    assert '"answer":"NOT_FOUND"' in event.detail


async def test_an_outlet_that_deals_with_such_cards_is_told_why_a_purpose_is_refused(world):
    """The hospital activates any card by statute, so it legitimately sees the card; it holds no
    info_inquiry grant, so the inquiry itself is FORBIDDEN with the engine's reason."""
    body = await world.partner.call(HOSPITAL, STATUS, status_vars(world.cards["th"]))
    assert error(body) == {"code": "FORBIDDEN", "reason": "NO_GRANT"}
    [event] = await events(world.sessions, action="card.status")
    assert (event.tenant, event.decision, event.reason) == (TH, "deny", "NO_GRANT")
    assert '"answer":"FORBIDDEN"' in event.detail


async def test_a_granted_inquiry_reads_a_cancelled_card(world):
    await grant(world.sessions, "info_inquiry", outlet=GRASSROOTS)
    await until_permitted(world.partner, GRASSROOTS, "info_inquiry")
    body = await world.partner.call(GRASSROOTS, STATUS, status_vars(world.cards["cancelled"]))
    assert body["data"]["cardStatus"]["status"] == "cancelled"
    bad_purpose = await world.partner.call(GRASSROOTS, STATUS, status_vars(world.cards["th"], p="teleport"))
    assert error(bad_purpose)["code"] == "BAD_INPUT"


async def test_my_permissions_name_tenants_and_grants(world):
    gid = await grant(world.sessions, "password_reset", outlet=GRASSROOTS)
    await until_permitted(world.partner, GRASSROOTS, "password_reset")
    mine = (await world.partner.call(GRASSROOTS, PERMISSIONS))["data"]["myPermissions"]
    assert mine == [{"service": "password_reset", "tenants": [GZ, TH], "grantIds": [str(gid)]}]
    # One entry per card service, each source once (it used to repeat per department level).
    hospital = (await world.partner.call(HOSPITAL, PERMISSIONS))["data"]["myPermissions"]
    assert len(hospital) == 1 and hospital[0]["service"] == "activation"
    assert hospital[0]["tenants"] == ["cn", GD, GZ, TH]
    assert len(hospital[0]["grantIds"]) == 1 and hospital[0]["grantIds"][0].startswith("builtin:")


@pytest.mark.parametrize("change", ["expired", "revoked"])
async def test_expired_and_revoked_keys_are_unauthenticated(world, change):
    key = await new_key(world.sessions, HOSPITAL)
    now = datetime.now(UTC)
    values = {"expires_at": now - timedelta(seconds=1)} if change == "expired" else {"revoked_at": now}
    async with world.sessions() as session, session.begin():
        await session.exec(update(PartnerKey).where(PartnerKey.key_hash == secret_hash(key)).values(**values))
    body = await world.partner.call_with(key, STATUS, status_vars(world.cards["th"], p="activation"))
    assert error(body)["code"] == "UNAUTHENTICATED"
    assert await events(world.sessions, action="card.status") == []
