"""Rotating the data and lookup keys without downtime: values sealed under a retired key still open,
cards hashed under the retired lookup key are still found, `ssc key-rotation rewrap` moves every value
to the current keys (resumable, compare-and-set), and afterwards the retired keys can go. Through the
use cases, the command and the live app, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import os
import random
import secrets
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import httpx
import orjson
import pytest
from cryptography.exceptions import InvalidTag
from sqlmodel import select

from app.ops.cards.idempotency import request_hashes, stored_result
from app.ops.cards.lookup import BANK_CONTEXT, ID_CONTEXT, Presented, find_card
from app.ops.demo.generate import card_row, synthetic_cards
from app.ops.demo.partner import partner_quick_start
from app.ops.errors import OpsError
from app.ops.keys.rewrap import rewrap
from app.ops.principals.credentials import create_principal_with_token
from app.ops.principals.logins import TOTP_CONTEXT
from app.ops.tenants.apply import apply_tenant_files
from app.settings import Settings
from app.store.crypto import FieldCipher
from app.store.db import make_async_engine
from app.store.point_reads import PointReader
from app.store.tables import AuditEvent, Card, IdempotencyRecord, PrincipalLogin, Tenant
from app.web import create_app
from tests.livesrv import serve
from tests.procsrv import PROJECT_ROOT

OLD_DATA, OLD_LOOKUP, NEW_DATA, NEW_LOOKUP, STRANGER = (secrets.token_bytes(32) for _ in range(5))
OLD = FieldCipher(OLD_DATA, OLD_LOOKUP)
ROTATING = FieldCipher(NEW_DATA, NEW_LOOKUP, previous_data_keys=[OLD_DATA], previous_lookup_key=OLD_LOOKUP)
NEW = FieldCipher(NEW_DATA, NEW_LOOKUP)
CARDS = 25


def b64(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


def test_a_cipher_opens_what_a_retired_key_sealed_and_says_which():
    sealed = OLD.encrypt("440106199001011234", context=ID_CONTEXT)
    assert ROTATING.opened(sealed, context=ID_CONTEXT) == ("440106199001011234", False)
    fresh = ROTATING.encrypt("440106199001011234", context=ID_CONTEXT)
    assert ROTATING.opened(fresh, context=ID_CONTEXT) == ("440106199001011234", True)
    with pytest.raises(InvalidTag):
        NEW.decrypt(sealed, context=ID_CONTEXT)
    with pytest.raises(InvalidTag):  # the context still binds: no key opens it in another column
        ROTATING.decrypt(sealed, context=BANK_CONTEXT)
    old_hash, new_hash = (c.lookup_hash("x", context=ID_CONTEXT) for c in (OLD, NEW))
    assert ROTATING.lookup_candidates("x", context=ID_CONTEXT) == (new_hash, old_hash)
    assert NEW.lookup_candidates("x", context=ID_CONTEXT) == (new_hash,)


async def _cards_under(sessions, cipher: FieldCipher, count: int, seed: int) -> list:
    async with sessions() as session, session.begin():
        issuers = list((await session.exec(select(Tenant).where(Tenant.path.like("cn/440000/%")))).all())
        issuers = [t for t in issuers if t.path.count("/") == 2]
        first = 10_000_000 + seed * 1_000
        cards = list(synthetic_cards(random.Random(seed), issuers, count, first))
        ids = {t.path: t.id for t in issuers}
        session.add_all(Card(**card_row(card, ids[card.issuing_tenant], cipher)) for card in cards)
    return cards


async def _with_totp(sessions, cipher: FieldCipher) -> int:
    person = await create_principal_with_token(sessions, tenant_path="cn/440000", role="auditor")
    async with sessions() as session, session.begin():
        principal_id = person.principal_id
        session.add(
            PrincipalLogin(
                principal_id=principal_id,
                password_hash="argon2-not-used-here",
                password_set_at=datetime.now(UTC),
                totp_secret=cipher.encrypt("JBSWY3DPEHPK3PXP", context=TOTP_CONTEXT),
            )
        )
    return principal_id


async def _found(db_url: str, cipher: FieldCipher, cards: list) -> int:
    engine = make_async_engine(db_url)
    store = SimpleNamespace(reader=PointReader(engine), cipher=cipher)
    try:
        found = 0
        for card in cards:
            presented = Presented(
                id_number=card.id_number, card_number=card.card_number, bank_card_number=card.bank_card_number
            )
            found += (await find_card(store, presented)) is not None
        return found
    finally:
        await store.reader.close()
        await engine.dispose()


@pytest.fixture
async def world(sessions, tenants_dir):
    await apply_tenant_files(sessions, tenants_dir)
    return sessions


async def test_rewrap_moves_every_value_to_the_current_keys_and_the_retired_ones_can_go(world, db_url):
    sessions = world
    cards = await _cards_under(sessions, OLD, CARDS, seed=1)
    principal_id = await _with_totp(sessions, OLD)
    # Mid-rotation: new cards are sealed under the new keys while old ones are not yet rewrapped.
    newer = await _cards_under(sessions, ROTATING, 5, seed=2)
    assert await _found(db_url, ROTATING, cards + newer) == CARDS + 5
    assert await _found(db_url, NEW, cards) == 0, "without the retired lookup key the old cards are lost"

    summary = await rewrap(sessions, ROTATING)
    assert (summary.cards, summary.cards_rewrapped, summary.secrets_rewrapped) == (CARDS + 5, CARDS, 1)
    assert summary.unreadable_count == 0

    # The retired keys can go: every card is found and opens under the new keys alone.
    assert await _found(db_url, NEW, cards + newer) == CARDS + 5
    async with sessions() as session:
        for card in (await session.exec(select(Card))).all():
            NEW.decrypt(card.id_number_enc, context=ID_CONTEXT)
            if card.bank_card_enc is not None:
                NEW.decrypt(card.bank_card_enc, context=BANK_CONTEXT)
        login = await session.get(PrincipalLogin, principal_id)
        assert NEW.decrypt(login.totp_secret, context=TOTP_CONTEXT) == "JBSWY3DPEHPK3PXP"
        event = (await session.exec(select(AuditEvent).where(AuditEvent.action == "keys.rewrap"))).one()
    assert orjson.loads(event.detail)["cards_rewrapped"] == CARDS
    assert b64(OLD_DATA) not in event.detail and b64(NEW_DATA) not in event.detail

    again = await rewrap(sessions, ROTATING)  # resumable: nothing is left to do
    assert (again.cards, again.cards_rewrapped, again.secrets_rewrapped) == (CARDS + 5, 0, 0)


async def test_a_value_no_key_opens_is_reported_and_left_alone(world, db_url):
    sessions = world
    cards = await _cards_under(sessions, OLD, 4, seed=3)
    stray = await _cards_under(sessions, FieldCipher(STRANGER, STRANGER), 1, seed=4)
    async with sessions() as session:
        before = (
            await session.exec(select(Card.id_number_enc).where(Card.card_number == stray[0].card_number))
        ).one()
    summary = await rewrap(sessions, ROTATING)
    assert summary.unreadable_count == 1 and summary.unreadable[0].startswith("card ")
    assert summary.cards_rewrapped == 4
    async with sessions() as session:
        after = (
            await session.exec(select(Card.id_number_enc).where(Card.card_number == stray[0].card_number))
        ).one()
    assert after == before
    assert await _found(db_url, NEW, cards) == 4


async def test_a_retry_sent_across_the_rotation_is_still_recognised(world):
    sessions = world
    fields = {"card": "D00000001", "pin": "147036"}
    first = request_hashes(OLD, "resetPassword", fields)
    async with sessions() as session, session.begin():
        outlet = "gz-hall-city"
        session.add(
            IdempotencyRecord(
                outlet_id=outlet,
                key="retry-0001",
                operation="resetPassword",
                request_hash=first[0],
                result="{}",
            )
        )
    async with sessions() as session:
        assert (
            await stored_result(
                session,
                outlet,
                "retry-0001",
                "resetPassword",
                request_hashes(ROTATING, "resetPassword", fields),
            )
            == {}
        )
        with pytest.raises(OpsError) as refused:
            other = request_hashes(ROTATING, "resetPassword", {**fields, "pin": "258147"})
            await stored_result(session, outlet, "retry-0001", "resetPassword", other)
    assert refused.value.code == "CONFLICT"


def _rewrap_command(db_url: str, tmp_path: Path, **keys: bytes) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "SSC_DATABASE_URL": db_url,
        "SSC_KEY_FILE": str(tmp_path / "unused-keys.env"),
        **{f"SSC_{name.upper()}": b64(key) for name, key in keys.items()},
    }
    ssc = str(Path(sys.executable).with_name("ssc"))
    return subprocess.run(
        [ssc, "key-rotation", "rewrap"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_the_command_rewraps_and_fails_while_a_value_stays_unopened(world, db_url, tmp_path):
    sessions = world
    await _cards_under(sessions, OLD, 3, seed=5)
    without_previous = _rewrap_command(db_url, tmp_path, data_key=NEW_DATA, lookup_key=NEW_LOOKUP)
    assert without_previous.returncode == 1
    assert "3 values open under none of the keys" in without_previous.stderr
    done = _rewrap_command(
        db_url,
        tmp_path,
        data_key=NEW_DATA,
        lookup_key=NEW_LOOKUP,
        previous_data_keys=OLD_DATA,
        previous_lookup_key=OLD_LOOKUP,
    )
    assert done.returncode == 0, done.stderr
    assert "3 cards read, 3 rewrapped" in done.stdout
    assert b64(NEW_DATA) not in done.stdout + done.stderr


CARD_STATUS = """query($c: String!, $i: String!) {
  cardStatus(cardNumber: $c, idNumber: $i, purpose: "password_reset") { status } }"""
RESET = """mutation($c: String!, $i: String!) { resetPassword(input: {cardNumber: $c, idNumber: $i,
  identityVerified: true, newPin: "147036", idempotencyKey: "rotation-retry-1"}) { replayed } }"""


def _settings(db_url: str, tmp_path: Path, data: bytes, lookup: bytes, **previous: bytes) -> Settings:
    return Settings(
        database_url=db_url,
        key_file=str(tmp_path / "unused-keys.env"),
        data_key=b64(data),
        lookup_key=b64(lookup),
        **{name: b64(key) for name, key in previous.items()},
    )


async def test_the_platform_serves_partners_through_every_step_of_a_rotation(world, db_url, tmp_path):
    sessions = world
    started = await partner_quick_start(sessions, OLD, "gz-hall-city")
    card = {"c": started.card.card_number, "i": started.card.id_number}

    def call(settings: Settings, query: str) -> dict:
        with serve(create_app(settings)) as base:
            answer = httpx.post(
                f"{base}/graphql",
                json={"query": query, "variables": card},
                headers={"x-api-key": started.key.key},
                timeout=30,
            ).json()
        assert "errors" not in answer, answer
        return answer["data"]

    before = _settings(db_url, tmp_path, OLD_DATA, OLD_LOOKUP)
    rotating = _settings(
        db_url, tmp_path, NEW_DATA, NEW_LOOKUP, previous_data_keys=OLD_DATA, previous_lookup_key=OLD_LOOKUP
    )
    after = _settings(db_url, tmp_path, NEW_DATA, NEW_LOOKUP)
    assert call(before, RESET)["resetPassword"]["replayed"] is False
    # Workers restarted with the new keys current and the old ones previous: the same card, the retry.
    assert call(rotating, CARD_STATUS)["cardStatus"]["status"] == "normal"
    assert call(rotating, RESET)["resetPassword"]["replayed"] is True
    assert (await rewrap(sessions, ROTATING)).cards_rewrapped >= 1
    # The old keys gone: the card is found and read under the new keys alone.
    assert call(after, CARD_STATUS)["cardStatus"]["status"] == "normal"
