"""Card import: validated batches, all or nothing each, problems by line, nothing in clear."""

import pytest
from sqlmodel import func, select

from app.domain.idnumber import id_check_char
from app.ops.cards.imports.importer import CardFileError, import_cards
from app.store.tables import AuditEvent, Card
from tests.ops.cards.imports.card_files import CIPHER, edit_cell


async def _cards(sessions) -> int:
    async with sessions() as session:
        return (await session.exec(select(func.count()).select_from(Card))).one()


async def test_clean_file_imports_every_card_encrypted(sessions, card_file, db_url):
    summary = await import_cards(sessions, CIPHER, card_file, batch_size=100)
    assert (summary.rows, summary.imported, summary.batches_written, summary.problem_count) == (
        250,
        250,
        3,
        0,
    )
    async with sessions() as session:
        card = (await session.exec(select(Card).order_by(Card.id))).first()
        events = (await session.exec(select(AuditEvent).where(AuditEvent.action == "cards.import"))).all()
    first = card_file.read_text(encoding="utf-8").splitlines()[1].split(",")
    assert CIPHER.decrypt(card.id_number_enc, context=b"id_number") == first[3]
    assert card.id_number_hash == CIPHER.lookup_hash(first[3], context=b"id_number")
    assert (card.status, card.pin_state, card.version) == ("normal", "default", 1)
    assert len(events) == 3 and first[3] not in "".join(e.detail for e in events)


async def test_a_bad_row_refuses_its_batch_only_and_names_its_line(sessions, card_file):
    original = card_file.read_text(encoding="utf-8").splitlines()[4].split(",")[3]
    wrong = "0" if id_check_char(original[:17]) != "0" else "1"
    edit_cell(card_file, 5, "id_number", original[:17] + wrong)  # wrong check character
    edit_cell(card_file, 150, "issuing_tenant", "cn/440000/440999")
    edit_cell(card_file, 151, "bank_card_number", "6217001234567890123")  # Luhn fails
    summary = await import_cards(sessions, CIPHER, card_file, batch_size=100)
    assert [(p.line, p.column) for p in summary.problems] == [
        (5, "id_number"),
        (150, "issuing_tenant"),
        (151, "bank_card_number"),
    ]
    assert original[:17] not in str(summary.problems[0])  # the message never repeats the number
    assert (summary.batches_written, summary.batches_refused, summary.imported) == (1, 2, 50)
    assert await _cards(sessions) == 50


async def test_duplicates_in_the_file_and_in_the_database(sessions, card_file):
    assert (await import_cards(sessions, CIPHER, card_file)).imported == 250
    again = await import_cards(sessions, CIPHER, card_file)
    assert again.imported == 0 and again.problem_count == 500  # serial and number of every row
    assert await _cards(sessions) == 250
    lines = card_file.read_text(encoding="utf-8").splitlines()
    dup = card_file.with_name("dup.csv")
    dup.write_text("\n".join([lines[0], lines[1], lines[1]]) + "\n", encoding="utf-8")
    summary = await import_cards(sessions, CIPHER, dup)
    assert {(p.line, p.column) for p in summary.problems} >= {(3, "card_serial"), (3, "card_number")}


async def test_missing_columns_refuse_the_file(sessions, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("card_number,id_number\nD00000001,11010519491231002X\n", encoding="utf-8")
    with pytest.raises(CardFileError, match="issuing_tenant"):
        await import_cards(sessions, CIPHER, path)
