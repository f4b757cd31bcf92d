"""The partner world of the card tests: the demo tree, cards whose clear numbers only the test knows,
a key for each outlet used and a live server, called as those outlets.

The helpers here (`open_world`, `Partner`, ...) are shared by test_card_status.py,
test_card_services.py, test_pins.py and test_idempotency_retention.py; each opens its own `world`
fixture with `open_world`."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx
from sqlmodel import select

from app.domain.bankcard import generate_bank_card_number
from app.domain.idnumber import generate_id_number
from app.ops.demo.generate import BANK_BINS, DemoCard, card_row
from app.ops.grants.changes import GrantRequest, grant_service
from app.ops.partner_keys.keys import create_partner_key
from app.ops.tenants.apply import apply_tenant_files
from app.settings import Settings, get_settings, resolve_keys
from app.store.crypto import FieldCipher
from app.store.tables import AuditEvent, Card, Tenant
from app.web import create_app
from tests.livesrv import serve

GD, GZ, TH = "cn/440000", "cn/440000/440100", "cn/440000/440100/440106"
HOSPITAL, PHARMACY, GRASSROOTS = "gz-th-hosp-tianhe", "gz-th-pharm-dasenlin", "gz-th-wushan"
ICBC, CCB, HALL, HOTLINE = "gz-yx-icbc-dongfeng", "gz-th-ccb-tiyu", "gz-th-hall", "gd-12333"
OUTLETS = (HOSPITAL, PHARMACY, GRASSROOTS, ICBC, CCB, HALL, HOTLINE)

PERMISSIONS = "{ myPermissions { service tenants grantIds } }"
FIN = (
    "mutation($i: ReportFinancialActivationInput!) { reportFinancialActivation(input: $i) { replayed"
    " card { socialFunction activationChannel financialFunction bankCardMasked } } }"
)


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


def pin_change_input(card, old: str, new: str, key: str) -> dict:
    """The variables of a changePassword call on `card` with this idempotency key."""
    return {
        "i": {
            "cardNumber": card.card_number,
            "idNumber": card.id_number,
            "oldPin": old,
            "newPin": new,
            "idempotencyKey": key,
        }
    }


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


async def insert_cards(sessions, cards: list[DemoCard], cipher: FieldCipher | None = None, **columns) -> None:
    """Cards protected with `cipher`, by default with the environment's keys (the test server's)."""
    cipher = cipher or FieldCipher(*resolve_keys(get_settings()))
    async with sessions() as session, session.begin():
        tenants = {t.path: t.id for t in (await session.exec(select(Tenant))).all()}
        for card in cards:
            session.add(Card(**{**card_row(card, tenants[card.issuing_tenant], cipher), **columns}))


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
