"""Card import through worker processes: small blocks forced by `block_bytes`, records cut only
between records (quoted newlines), line numbers as csv.DictReader counts them, results in order."""

import csv
from pathlib import Path

import pytest
from sqlmodel import select

from app.domain.idnumber import id_check_char
from app.ops.cards.imports.importer import CardFileError, import_cards
from app.ops.cards.imports.pool import CardFile
from app.ops.cards.imports.rows import physical_lines
from app.store.tables import Card
from tests.ops.cards.imports.card_files import CIPHER, set_cell

SMALL_BLOCKS = 1_500  # about a dozen records


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


async def _cards(sessions) -> dict[str, Card]:
    async with sessions() as session:
        return {c.card_serial: c for c in (await session.exec(select(Card))).all()}


async def test_workers_report_the_lines_of_the_problems(sessions, card_file):
    lines = _lines(card_file)
    id_number = lines[4].split(",")[3]
    set_cell(lines, 5, "id_number", id_number[:17] + ("0" if id_check_char(id_number[:17]) != "0" else "1"))
    set_cell(lines, 150, "issuing_tenant", "cn/440000/440999")
    set_cell(lines, 151, "bank_card_number", "6217001234567890123")
    card_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = await import_cards(
        sessions, CIPHER, card_file, batch_size=100, workers=2, block_bytes=SMALL_BLOCKS
    )
    assert [(p.line, p.column) for p in summary.problems] == [
        (5, "id_number"),
        (150, "issuing_tenant"),
        (151, "bank_card_number"),
    ]
    assert (summary.rows, summary.batches_written, summary.batches_refused, summary.imported) == (
        250,
        1,
        2,
        50,
    )
    stored = await _cards(sessions)
    assert sorted(stored) == sorted(line.split(",")[2] for line in lines[201:])


async def test_workers_and_this_process_write_the_same_cards(sessions, card_file, tmp_path):
    summary = await import_cards(
        sessions, CIPHER, card_file, batch_size=60, workers=2, block_bytes=SMALL_BLOCKS
    )
    assert (summary.rows, summary.imported, summary.batches_written, summary.problem_count) == (
        250,
        250,
        5,
        0,
    )
    with card_file.open(newline="", encoding="utf-8") as fh:
        records = list(csv.DictReader(fh))
    stored = await _cards(sessions)
    for record in records:
        card = stored[record["card_serial"]]
        assert CIPHER.decrypt(card.id_number_enc, context=b"id_number") == record["id_number"]
        assert CIPHER.decrypt(card.bank_card_enc, context=b"bank_card") == record["bank_card_number"]
        assert (card.card_number, card.holder_name) == (record["card_number"], record["holder_name"])


async def test_a_quoted_newline_at_a_block_boundary_stays_in_its_record(sessions, card_file):
    lines = _lines(card_file)
    set_cell(lines, 40, "holder_name", '"王\n芳"')  # record 40 now spans lines 40-41
    quoted = lines[39].split(",")[2]
    lines.insert(60, "")  # a blank line, line 62, is no record
    set_cell(lines, 199, "service_bank", "?")  # the record on line 200 (+1 for the quoted newline)
    card_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # The first block's read ends 3 bytes into line 40: a cut that ignored quotes would split it.
    header_bytes = len(lines[0].encode()) + 1
    block_bytes = len("\n".join(lines[:39]).encode()) + 1 - header_bytes + 3

    summary = await import_cards(
        sessions, CIPHER, card_file, batch_size=100, workers=2, block_bytes=block_bytes
    )
    assert [str(p) for p in summary.problems] == [
        "line 200: service_bank: a bank code is 3-16 characters of 0-9, A-Z"
    ]
    # 250 records; the refused batch holds records 101-200, on lines 104-203
    assert (summary.rows, summary.imported, summary.batches_written, summary.batches_refused) == (
        250,
        150,
        2,
        1,
    )
    assert (await _cards(sessions))[quoted].holder_name == "王\n芳"


async def test_a_file_error_in_a_worker_stops_the_import(sessions, card_file):
    data = card_file.read_bytes().split(b"\n")
    data[119] = data[119].replace(b",", b",\xfe", 1)  # line 120
    card_file.write_bytes(b"\n".join(data))
    with pytest.raises(CardFileError, match="line 120: not UTF-8"):
        await import_cards(sessions, CIPHER, card_file, batch_size=100, workers=2, block_bytes=SMALL_BLOCKS)
    # the workers are gone and the next import of the mended file runs; it finds the first batch
    # already stored on PostgreSQL (committed before the failure) and nothing on SQLite
    card_file.write_bytes(b"\n".join(data[:119] + data[120:]))
    summary = await import_cards(
        sessions, CIPHER, card_file, batch_size=100, workers=2, block_bytes=SMALL_BLOCKS
    )
    assert summary.rows == 249
    assert len(await _cards(sessions)) == 249


def test_blocks_end_between_records_and_know_their_first_line(tmp_path):
    path = tmp_path / "cards.csv"
    header = "\ufeffissuing_tenant,card_number,card_serial,id_number,service_bank\r\n"
    body = 'cn,1\r\ncn,"two\nlines"\r\n\r\ncn,3\ncn,"x ""quoted"" y"\ncn,"a\r\nb\r\nc"\ncn,6'
    path.write_bytes((header + body).encode())
    card_file = CardFile.open(path)
    assert (card_file.first_line, card_file.fieldnames[0]) == (2, "issuing_tenant")
    for block_bytes in (1, 4, 9, 1000):
        blocks = list(card_file.blocks(block_bytes))
        assert b"".join(data for _, data in blocks) == body.encode()
        assert all(data.count(b'"') % 2 == 0 for _, data in blocks)
        starts = [2]
        for _, data in blocks[:-1]:
            starts.append(starts[-1] + physical_lines(data))
        assert [line for line, _ in blocks] == starts
