"""Batches written at once on PostgreSQL (importer.PG_WRITERS, each on a connection of its own), one at
a time on SQLite: the same result either way — every batch whole or refused whole, the summary in file
order, one audit event per written batch in an unbroken chain."""

from __future__ import annotations

import asyncio
import json

from sqlmodel import func, select

from app.ops.cards.imports import importer
from app.ops.cards.imports.importer import import_cards
from app.ops.compliance.verify import verify_database
from app.ops.tenants.apply import apply_tenant_files
from app.store.db import is_sqlite
from app.store.tables import AuditEvent, Card
from tests.ops.cards.imports.card_files import CIPHER, generated_card_file


async def test_batches_written_at_once_give_what_one_at_a_time_gives(
    sessions, tenants_dir, tmp_path, db_url, monkeypatch
):
    await apply_tenant_files(sessions, tenants_dir)
    path = await generated_card_file(sessions, tmp_path / "cards.csv", 500, seed=21)
    lines = path.read_text(encoding="utf-8").splitlines()
    # Two records already stored (lines 130 and 420: the third and the ninth batch of 50).
    stored = tmp_path / "stored.csv"
    stored.write_text("\n".join([lines[0], lines[129], lines[419]]) + "\n", encoding="utf-8")
    assert (await import_cards(sessions, CIPHER, stored)).imported == 2

    writing, most = 0, 0
    original = importer._Batches.write

    async def counted(self, batch):
        nonlocal writing, most
        writing += 1
        most = max(most, writing)
        try:
            await asyncio.sleep(0.01)  # a batch stays in the database a while, as a large one does
            return await original(self, batch)
        finally:
            writing -= 1

    monkeypatch.setattr(importer._Batches, "write", counted)
    summary = await import_cards(sessions, CIPHER, path, batch_size=50)

    assert most == (1 if is_sqlite(db_url) else importer.PG_WRITERS)
    assert (summary.batches_written, summary.batches_refused, summary.imported) == (8, 2, 400)
    assert [(p.line, p.column) for p in summary.problems] == [
        (130, "card_serial"),
        (130, "card_number"),
        (420, "card_serial"),
        (420, "card_number"),
    ]
    async with sessions() as session:
        assert (await session.exec(select(func.count()).select_from(Card))).one() == 402
        events = (
            await session.exec(
                select(AuditEvent.detail).where(AuditEvent.action == "cards.import").order_by(AuditEvent.id)
            )
        ).all()
    written = sorted(tuple(json.loads(d)["lines"]) for d in events[1:])  # [0]: stored.csv
    assert written == [(2 + 50 * n, 51 + 50 * n) for n in range(10) if n not in (2, 8)]
    assert verify_database(db_url).ok
