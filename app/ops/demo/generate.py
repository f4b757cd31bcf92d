"""`ssc demo generate`: synthetic outlets and cards with valid ID and bank card numbers.

The numbers are made up but pass every check (GB 11643 check character, Luhn), so imports,
benchmarks and demos exercise the real validation and encryption paths.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import func, insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.projection import outlet_group_line
from app.domain.bankcard import generate_bank_card_number, mask_bank_card_number
from app.domain.catalogue import OutletKind
from app.domain.idnumber import generate_id_number, mask_id_number
from app.domain.regions import TenantLevel
from app.store import policy
from app.store.audit import append_event
from app.store.crypto import FieldCipher
from app.store.tables import Card, Outlet, Tenant
from app.store.tables.common import utcnow

# Service banks of the demo (CNAPS head-office code -> a debit-card BIN of that bank).
BANK_BINS = {"102": "621226", "103": "622848", "104": "621661", "105": "621700"}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗梁"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰"
CARD_CSV_COLUMNS = [
    "issuing_tenant",
    "card_number",
    "card_serial",
    "id_number",
    "holder_name",
    "service_bank",
    "bank_card_number",
]
BATCH = 5_000
ACTOR = "cli:demo-generate"

Progress = Callable[[int], None]


@dataclass(frozen=True)
class DemoCard:
    issuing_tenant: str
    card_number: str
    card_serial: str
    id_number: str
    holder_name: str
    service_bank: str
    bank_card_number: str


def _issuing_tenants(tenants: list[Tenant]) -> list[Tenant]:
    # Cards are issued by prefectures and counties (a county-less prefecture issues its own).
    issuers = [t for t in tenants if t.level in (TenantLevel.prefecture, TenantLevel.county)]
    if not issuers:
        raise ValueError("no prefecture or county tenants to issue cards; run `ssc tenants apply` first")
    return issuers


def synthetic_cards(rng: random.Random, issuers: list[Tenant], count: int, first: int) -> Iterator[DemoCard]:
    """`count` cards numbered from `first`, so repeated runs never collide on card number or serial."""
    today = date.today()
    for n in range(first, first + count):
        tenant = rng.choice(issuers)
        birth = today - timedelta(days=rng.randrange(16 * 365, 90 * 365))
        bank = rng.choice(list(BANK_BINS))
        yield DemoCard(
            issuing_tenant=tenant.path,
            card_number=f"D{n % 100_000_000:08d}",
            card_serial=f"{tenant.code}D156{n:022d}",
            id_number=generate_id_number(rng, tenant.code, birth),
            holder_name=rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2))),
            service_bank=bank,
            bank_card_number=generate_bank_card_number(rng, BANK_BINS[bank]),
        )


def card_row(card: DemoCard, tenant_id: int, cipher: FieldCipher) -> dict:
    return {
        "issuing_tenant_id": tenant_id,
        "card_number": card.card_number,
        "card_serial": card.card_serial,
        "id_number_enc": cipher.encrypt(card.id_number, context=b"id_number"),
        "id_number_hash": cipher.lookup_hash(card.id_number, context=b"id_number"),
        "id_number_masked": mask_id_number(card.id_number),
        "bank_card_enc": cipher.encrypt(card.bank_card_number, context=b"bank_card"),
        "bank_card_hash": cipher.lookup_hash(card.bank_card_number, context=b"bank_card"),
        "bank_card_masked": mask_bank_card_number(card.bank_card_number),
        "service_bank_code": card.service_bank,
        "holder_name": card.holder_name,
        "created_at": utcnow(),
        "updated_at": utcnow(),
    }


def _synthetic_outlet(rng: random.Random, n: int, tenants: list[Tenant]) -> dict:
    kind = rng.choice(list(OutletKind))
    if kind == OutletKind.grassroots_platform:
        tenant = rng.choice([t for t in tenants if t.level == TenantLevel.county] or tenants)
    else:
        tenant = rng.choice(tenants)
    row = {
        "id": f"demo-{n:07d}",
        "tenant_id": tenant.id,
        "kind": kind.value,
        "name": f"演示网点 {n}",
        "status": "open",
        "created_at": utcnow(),
        "updated_at": utcnow(),
    }
    if kind == OutletKind.bank_outlet:
        row["bank_code"] = rng.choice(list(BANK_BINS))
    if kind == OutletKind.grassroots_platform:
        # Township codes 9 digits: county code + 3; village codes 12: township + 3. Unique per n.
        row["nbs_code"] = f"{tenant.code}{n:06d}"
    return row, tenant.path


async def next_ordinal(session: AsyncSession, column, prefix: str) -> int:
    """The next number for synthetic rows whose `column` starts with `prefix` (counted, so runs add up)."""
    count = (await session.exec(select(func.count()).where(column.like(f"{prefix}%")))).one()
    return count + 1


async def generate(
    sessions: async_sessionmaker[AsyncSession],
    cipher: FieldCipher,
    *,
    cards: int,
    outlets: int,
    seed: int | None = None,
    csv_path: Path | None = None,
    progress: Progress = lambda n: None,
) -> dict[str, int]:
    """Write `outlets` outlets and `cards` cards to the database (or the cards to `csv_path`)."""
    rng = random.Random(seed)
    async with sessions() as session, session.begin():
        tenants = list((await session.exec(select(Tenant))).all())
        issuers = _issuing_tenants(tenants)
        by_path = {t.path: t.id for t in tenants}
        first_outlet = await next_ordinal(session, Outlet.id, "demo-")
        first_card = await next_ordinal(session, Card.card_number, "D")
        for start in range(0, outlets, BATCH):
            rows = [
                _synthetic_outlet(rng, first_outlet + start + i, issuers)
                for i in range(min(BATCH, outlets - start))
            ]
            await session.exec(insert(Outlet), params=[r for r, _ in rows])
            await policy.add_lines(
                session, [outlet_group_line(r["id"], r["kind"], path) for r, path in rows], by=ACTOR
            )
            progress(len(rows))
        generated = synthetic_cards(rng, issuers, cards, first_card)
        if csv_path is not None:
            with csv_path.open("w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(CARD_CSV_COLUMNS)
                for card in generated:
                    writer.writerow([getattr(card, c) for c in CARD_CSV_COLUMNS])
                    progress(1)
        else:
            batch: list[dict] = []
            for card in generated:
                batch.append(card_row(card, by_path[card.issuing_tenant], cipher))
                if len(batch) == BATCH:
                    await session.exec(insert(Card), params=batch)
                    progress(len(batch))
                    batch = []
            if batch:
                await session.exec(insert(Card), params=batch)
                progress(len(batch))
        summary = {
            "outlets": outlets,
            "cards": 0 if csv_path else cards,
            "csv_cards": cards if csv_path else 0,
        }
        await append_event(
            session,
            tenant="cn",
            actor=ACTOR,
            action="demo.generate",
            target_type="dataset",
            target_id=f"seed:{seed}",
            detail=summary,
        )
    return summary
