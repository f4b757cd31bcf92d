"""cardStatus and myPermissions over HTTP with partner keys: a card is found by the keyed hash of the
holder's ID number plus its card number, every read is audited, and a card the outlet may not deal
with looks exactly like a card that does not exist.

The fixtures and helpers here (`world`, `Partner`, ...) are shared with test_card_services.py and
test_pins.py."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import select

from app.domain.bankcard import generate_bank_card_number
from app.domain.idnumber import generate_id_number
from app.ops.card_lookup import card_cipher
from app.ops.demo import BANK_BINS, DemoCard, card_row
from app.ops.grants import GrantRequest, grant_service
from app.ops.partner_keys import create_partner_key
from app.ops.tenants_apply import apply_tenant_files
from app.settings import Settings
from app.store.crypto import secret_hash
from app.store.tables import AuditEvent, Card, PartnerKey, Tenant
from app.web import create_app
from tests.livesrv import serve

GD, GZ, TH = "cn/440000", "cn/440000/440100", "cn/440000/440100/440106"
HOSPITAL, PHARMACY, GRASSROOTS = "gz-th-hosp-tianhe", "gz-th-pharm-dasenlin", "gz-th-wushan"
ICBC, CCB, HALL, HOTLINE = "gz-yx-icbc-dongfeng", "gz-th-ccb-tiyu", "gz-th-hall", "gd-12333"
OUTLETS = (HOSPITAL, PHARMACY, GRASSROOTS, ICBC, CCB, HALL, HOTLINE)

STATUS = (
    'query($c: String!, $i: String!, $p: String! = "info_inquiry") { cardStatus(cardNumber: $c,'
    " idNumber: $i, purpose: $p) { cardNumber cardSerial issuingTenant serviceBank status socialFunction"
    " activationChannel pinState financialFunction idNumberMasked bankCardMasked } }"
)
PERMISSIONS = "{ myPermissions { tenant service grantIds } }"


@dataclass
class Partner:
    base: str
    keys: dict[str, str]  # outlet id -> API key

    async def call(self, outlet: str, query: str, variables: dict | None = None) -> dict:
        return await self.call_with(self.keys[outlet], query, variables)

    async def call_with(self, key: str, query: str, variables: dict | None = None) -> dict:
        async with httpx.AsyncClient(timeout=60) as client:
            response = await client.post(
                f"{self.base}/graphql",
                json={"query": query, "variables": variables or {}},
                headers={"X-Api-Key": key},
            )
        assert response.status_code == 200, response.text
        return response.json()


@dataclass
class World:
    partner: Partner
    sessions: object
    cards: dict[str, DemoCard]  # label -> the clear numbers (only the test knows them)


def error(body: dict) -> dict:
    assert body.get("errors"), body
    return body["errors"][0]["extensions"]


def make_card(rng: random.Random, tenant: str, n: int, bank: str = "102") -> DemoCard:
    birth = date(1980, 1, 1) + timedelta(days=rng.randrange(10_000))
    return DemoCard(
        issuing_tenant=tenant,
        card_number=f"T{n:08d}",
        card_serial=f"440106D156{n:022d}",
        id_number=generate_id_number(rng, tenant.rsplit("/", 1)[-1], birth),
        holder_name="测试",
        service_bank=bank,
        bank_card_number=generate_bank_card_number(rng, BANK_BINS[bank]),
    )


async def insert_cards(sessions, cards: list[DemoCard], **columns) -> None:
    async with sessions() as session, session.begin():
        tenants = {t.path: t.id for t in (await session.exec(select(Tenant))).all()}
        for card in cards:
            session.add(Card(**{**card_row(card, tenants[card.issuing_tenant], card_cipher()), **columns}))


async def grant(
    sessions, service: str, *, tenant: str = GZ, outlet: str | None = None, kind: str | None = None
):
    async with sessions() as session, session.begin():
        req = GrantRequest(
            tenant=tenant,
            service=service,
            valid_from=datetime.now(UTC) - timedelta(days=1),
            document_ref="穗人社〔2026〕1号",
            outlet_id=outlet,
            outlet_kind=kind,
        )
        row = await grant_service(session, req, actor="test")
    return row.id


async def until_permitted(partner: Partner, outlet: str, service: str) -> None:
    """The server applies a grant from the change log within moments; wait for it."""
    for _ in range(100):
        body = await partner.call(outlet, PERMISSIONS)
        if any(p["service"] == service for p in body["data"]["myPermissions"]):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{outlet} never got {service}")


async def new_key(sessions, outlet: str, rate_limit: str | None = "1000/second") -> str:
    async with sessions() as session, session.begin():
        issued = await create_partner_key(session, outlet, days=30, actor="test", rate_limit=rate_limit)
    return issued.key


@asynccontextmanager
async def open_world(db_url, sessions, tenants_dir) -> AsyncIterator[World]:
    """The demo tree, five cards of Tianhe and Guangzhou, a key for each outlet used, a live server."""
    await apply_tenant_files(sessions, tenants_dir)
    rng = random.Random(5)
    cards = {
        "th": make_card(rng, TH, 1),
        "th2": make_card(rng, TH, 2),
        "th_ccb": make_card(rng, TH, 3, bank="105"),
        "gz": make_card(rng, GZ, 4),
        "cancelled": make_card(rng, TH, 5),
    }
    await insert_cards(sessions, [c for k, c in cards.items() if k != "cancelled"])
    await insert_cards(sessions, [cards["cancelled"]], status="cancelled")
    keys = {outlet: await new_key(sessions, outlet) for outlet in OUTLETS}
    with serve(create_app(Settings(database_url=db_url))) as base:
        yield World(Partner(base, keys), sessions, cards)


@pytest.fixture
async def world(db_url, sessions, tenants_dir):
    async with open_world(db_url, sessions, tenants_dir) as opened:
        yield opened


async def card_row_of(sessions, card: DemoCard) -> Card:
    async with sessions() as session:
        return (await session.exec(select(Card).where(Card.card_number == card.card_number))).one()


async def events(sessions, **where) -> list[AuditEvent]:
    async with sessions() as session:
        query = select(AuditEvent).order_by(AuditEvent.id)
        for name, value in where.items():
            query = query.where(getattr(AuditEvent, name) == value)
        return list((await session.exec(query)).all())


async def assert_no_secrets(sessions, cards, *extra: str) -> None:
    """No full ID or bank card number (nor the given PINs) in any audit event."""
    secrets = [s for c in cards.values() for s in (c.id_number, c.bank_card_number)] + list(extra)
    for event in await events(sessions):
        text = repr(event.model_dump())
        for secret in secrets:
            assert secret not in text, (event.action, event.detail)


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


async def test_a_wrong_check_character_is_bad_input(world):
    card = world.cards["th"]
    last = card.id_number[-1]
    wrong = card.id_number[:-1] + ("0" if last != "0" else "1")
    body = await world.partner.call(HOSPITAL, STATUS, status_vars(card, i=wrong))
    assert error(body) == {"code": "BAD_INPUT", "field": "id_number", "reason": "BAD_ID_NUMBER"}
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
    assert {(p["tenant"], p["service"]) for p in mine} == {(GZ, "password_reset"), (TH, "password_reset")}
    assert all(p["grantIds"] == [str(gid)] for p in mine)
    hospital = (await world.partner.call(HOSPITAL, PERMISSIONS))["data"]["myPermissions"]
    assert {p["tenant"] for p in hospital} == {"cn", GD, GZ, TH}
    assert {p["service"] for p in hospital} == {"activation"}
    assert all(p["grantIds"][0].startswith("builtin:") for p in hospital)


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
