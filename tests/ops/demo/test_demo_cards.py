"""Demo data: generated cards are valid, never stored in clear, and feed a later import."""

import csv
from pathlib import Path

from sqlmodel import select

from app.domain.bankcard import luhn_ok
from app.domain.idnumber import is_valid_id_number
from app.ops.demo.generate import generate
from app.ops.tenants.apply import apply_tenant_files
from app.store.crypto import FieldCipher
from app.store.tables import Card, Outlet, PolicyLine

CIPHER = FieldCipher(b"k" * 32, b"l" * 32)


async def test_demo_cards_are_valid_and_never_stored_in_clear(sessions, tenants_dir, db_url, tmp_path):
    await apply_tenant_files(sessions, tenants_dir)
    summary = await generate(sessions, CIPHER, cards=300, outlets=50, seed=7)
    assert summary["cards"] == 300
    async with sessions() as session:
        cards = (await session.exec(select(Card))).all()
        outlets = (await session.exec(select(Outlet).where(Outlet.id.like("demo-%")))).all()
        groups = (await session.exec(select(PolicyLine).where(PolicyLine.source_id.like("demo-%")))).all()
    assert len(cards) == 300 and len(outlets) == 50 and len(groups) == 50
    numbers = []
    for card in cards:
        id_number = CIPHER.decrypt(card.id_number_enc, context=b"id_number")
        bank = CIPHER.decrypt(card.bank_card_enc, context=b"bank_card")
        assert is_valid_id_number(id_number) and luhn_ok(bank)
        assert card.id_number_hash == CIPHER.lookup_hash(id_number, context=b"id_number")
        assert card.id_number_masked[:4] == id_number[:4] and "*" in card.id_number_masked
        numbers += [id_number, bank]
    if db_url.startswith("sqlite"):
        raw = Path(db_url.removeprefix("sqlite:///")).read_bytes()
        wal = Path(db_url.removeprefix("sqlite:///") + "-wal")
        raw += wal.read_bytes() if wal.exists() else b""
        leaked = [n for n in numbers if n.encode() in raw]
        assert leaked == []
    # A second run continues the numbering instead of colliding on card numbers or outlet ids.
    await generate(sessions, CIPHER, cards=10, outlets=5, seed=7)


async def test_demo_csv_feeds_a_later_import(sessions, tenants_dir, tmp_path):
    await apply_tenant_files(sessions, tenants_dir)
    target = tmp_path / "cards.csv"
    await generate(sessions, CIPHER, cards=50, outlets=0, seed=3, csv_path=target)
    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    assert len(rows) == 50
    assert all(is_valid_id_number(r["id_number"]) and luhn_ok(r["bank_card_number"]) for r in rows)
    assert len({r["card_serial"] for r in rows}) == 50
    async with sessions() as session:
        assert (await session.exec(select(Card))).all() == []
