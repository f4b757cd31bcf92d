"""Card import, initial load and batches: the same rows either way; the initial load (SQLite, empty
card table) rebuilds the indexes, refuses bad batches alone, finds every duplicate in the file and,
when it fails, leaves the database as it was."""

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError
from sqlmodel import func, select

from app.domain.bankcard import mask_bank_card_number
from app.domain.idnumber import mask_id_number
from app.ops.cards.imports.importer import BATCHES, INITIAL_LOAD, CardFileError, import_cards
from app.ops.tenants.apply import apply_tenant_files
from app.store.db import is_sqlite
from app.store.tables import AuditEvent, Card, Tenant
from tests.ops.cards.imports.card_files import CIPHER, edit_cell, generated_card_file

CARD_INDEXES = {"uq_card_tenant_number": True, "uq_card_serial": True, "ix_card_id_hash": False}


def _records(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _copy_line(path: Path, source: int, target: int) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[target - 1] = lines[source - 1]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


async def _count(sessions, model=Card) -> int:
    async with sessions() as session:
        return (await session.exec(select(func.count()).select_from(model))).one()


async def _indexes(sessions) -> dict[str, bool]:
    async with sessions() as session:
        connection = await session.connection()
        found = await connection.run_sync(lambda c: inspect(c).get_indexes("card"))
    return {index["name"]: bool(index["unique"]) for index in found}


def _mode(db_url: str) -> str:
    return INITIAL_LOAD if is_sqlite(db_url) else BATCHES


def _assert_card_reads_back(card: Card, record: dict[str, str], tenant_id: int, started: datetime) -> None:
    id_number, bank_card = record["id_number"], record["bank_card_number"] or None
    assert (card.issuing_tenant_id, card.card_number, card.card_serial) == (
        tenant_id,
        record["card_number"],
        record["card_serial"],
    )
    assert CIPHER.decrypt(card.id_number_enc, context=b"id_number") == id_number
    assert card.id_number_hash == CIPHER.lookup_hash(id_number, context=b"id_number")
    assert card.id_number_masked == mask_id_number(id_number)
    if bank_card is None:
        assert (card.bank_card_enc, card.bank_card_hash, card.bank_card_masked) == (None, None, None)
    else:
        assert CIPHER.decrypt(card.bank_card_enc, context=b"bank_card") == bank_card
        assert card.bank_card_hash == CIPHER.lookup_hash(bank_card, context=b"bank_card")
        assert card.bank_card_masked == mask_bank_card_number(bank_card)
    assert (card.service_bank_code, card.holder_name) == (
        record["service_bank"],
        record["holder_name"] or None,
    )
    assert (card.status, card.social_function, card.activation_channel, card.financial_function) == (
        "normal",
        "not_enabled",
        None,
        None,
    )
    assert (card.pin_state, card.pin_failures, card.pin_hash, card.version) == ("default", 0, None, 1)
    assert card.created_at == card.updated_at
    assert started - timedelta(seconds=1) <= card.created_at <= datetime.now(UTC)


async def test_initial_load_and_batches_write_the_same_rows(sessions, tenants_dir, tmp_path, db_url):
    await apply_tenant_files(sessions, tenants_dir)
    started = datetime.now(UTC)
    first = await generated_card_file(sessions, tmp_path / "first.csv", 150, seed=1)
    edit_cell(first, 3, "bank_card_number", "")  # optional columns left empty
    edit_cell(first, 4, "holder_name", "")
    loaded = await import_cards(sessions, CIPHER, first, batch_size=100)
    second = await generated_card_file(sessions, tmp_path / "second.csv", 150, seed=2)
    edit_cell(second, 5, "bank_card_number", "")
    edit_cell(second, 6, "holder_name", "")
    batches = await import_cards(sessions, CIPHER, second, batch_size=100)

    assert (loaded.mode, loaded.imported, loaded.batches_written) == (_mode(db_url), 150, 2)
    assert (batches.mode, batches.imported, batches.batches_written) == (BATCHES, 150, 2)
    async with sessions() as session:
        cards = {c.card_serial: c for c in (await session.exec(select(Card))).all()}
        tenants = dict((await session.exec(select(Tenant.path, Tenant.id))).all())
    records = _records(first) + _records(second)
    assert len(cards) == len(records) == 300
    for record in records:
        _assert_card_reads_back(
            cards[record["card_serial"]], record, tenants[record["issuing_tenant"]], started
        )


async def test_initial_load_builds_the_indexes_again(sessions, tenants_dir, tmp_path, db_url):
    await apply_tenant_files(sessions, tenants_dir)
    path = await generated_card_file(sessions, tmp_path / "cards.csv", 120, seed=3)
    assert await _indexes(sessions) == CARD_INDEXES
    summary = await import_cards(sessions, CIPHER, path, batch_size=50)
    assert (summary.mode, summary.imported) == (_mode(db_url), 120)
    assert await _indexes(sessions) == CARD_INDEXES
    async with sessions() as session:
        card = (await session.exec(select(Card).limit(1))).one()
        values = card.model_dump(exclude={"id"}) | {"card_number": "Z99999999"}
        session.add(Card(**values))  # same serial: the unique index refuses it
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_initial_load_refuses_a_bad_batch_and_keeps_the_others(sessions, tenants_dir, tmp_path, db_url):
    await apply_tenant_files(sessions, tenants_dir)
    path = await generated_card_file(sessions, tmp_path / "cards.csv", 250, seed=4)
    edit_cell(path, 120, "service_bank", "b@nk")
    summary = await import_cards(sessions, CIPHER, path, batch_size=100)
    assert summary.mode == _mode(db_url)
    assert [(p.line, p.column) for p in summary.problems] == [(120, "service_bank")]
    assert (summary.batches_written, summary.batches_refused, summary.imported) == (2, 1, 150)
    assert await _count(sessions) == 150
    async with sessions() as session:
        events = (await session.exec(select(AuditEvent).where(AuditEvent.action == "cards.import"))).all()
    assert sorted(e.detail for e in events) == [
        '{"cards":100,"lines":[2,101]}',
        '{"cards":50,"lines":[202,251]}',
    ]


async def test_initial_load_finds_duplicates_across_batches(sessions, tenants_dir, tmp_path, db_url):
    await apply_tenant_files(sessions, tenants_dir)
    path = await generated_card_file(sessions, tmp_path / "cards.csv", 300, seed=5)
    _copy_line(path, 30, 180)  # batch 2 repeats a card of batch 1
    edit_cell(path, 205, "id_number", "not an id")  # batch 3 is refused for this line...
    _copy_line(path, 205, 290)  # ...and its card is still the first claim of its number and serial
    summary = await import_cards(sessions, CIPHER, path, batch_size=100)
    assert summary.mode == _mode(db_url)
    assert [str(p) for p in summary.problems] == [
        "line 180: card_number: duplicate of line 30 (same issuing tenant)",
        "line 180: card_serial: duplicate of line 30",
        "line 205: id_number: an ID number has 18 characters, got 9",
        "line 290: id_number: an ID number has 18 characters, got 9",
        "line 290: card_number: duplicate of line 205 (same issuing tenant)",
        "line 290: card_serial: duplicate of line 205",
    ]
    assert (summary.batches_written, summary.imported) == (1, 100)
    assert await _count(sessions) == 100


async def test_a_failed_initial_load_leaves_the_database_as_it_was(sessions, tenants_dir, tmp_path, db_url):
    await apply_tenant_files(sessions, tenants_dir)
    path = await generated_card_file(sessions, tmp_path / "cards.csv", 250, seed=6)
    data = path.read_bytes().split(b"\n")
    data[149] = data[149].replace(b",", b",\xff", 1)  # line 150 is not UTF-8
    path.write_bytes(b"\n".join(data))
    with pytest.raises(CardFileError, match="line 150: not UTF-8"):
        await import_cards(sessions, CIPHER, path, batch_size=100, block_bytes=2_000)
    # SQLite: one transaction, rolled back; PostgreSQL: the first batch was committed on its own.
    assert await _count(sessions) == (0 if is_sqlite(db_url) else 100)
    assert await _indexes(sessions) == CARD_INDEXES
