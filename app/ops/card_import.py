"""`ssc cards import FILE.csv`: stream a card file into the database in validated batches.

Each batch is all or nothing: every row is validated (ID check character, Luhn, known issuing
tenant, no duplicate card number within a tenant or card serial, in the file or in the database)
before the batch is written in one transaction with its audit event. A refused batch writes nothing
and its problems are reported with their line numbers; later batches still go in.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import tuple_
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.bankcard import mask_bank_card_number, normalize_bank_card_number
from app.domain.errors import DomainError
from app.domain.idnumber import mask_id_number, normalize_id_number
from app.store.audit import append_event
from app.store.bulk import insert_rows
from app.store.crypto import FieldCipher
from app.store.tables import Card, Tenant
from app.store.tables.common import utcnow

REQUIRED = ("issuing_tenant", "card_number", "card_serial", "id_number", "service_bank")
OPTIONAL = ("holder_name", "bank_card_number")
CARD_NUMBER = re.compile(r"^[0-9A-Z]{9}$")
CARD_SERIAL = re.compile(r"^[0-9A-Z]{1,32}$")
BANK_CODE = re.compile(r"^[0-9A-Z]{3,16}$")
MAX_NAME = 64
# SQLite allows 32,766 bound parameters per statement; duplicate checks go in chunks below that.
LOOKUP_CHUNK = 10_000
ACTOR = "cli:cards-import"


@dataclass(frozen=True)
class Problem:
    line: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.column}: {self.message}"


@dataclass
class ImportSummary:
    rows: int = 0
    imported: int = 0
    batches_written: int = 0
    batches_refused: int = 0
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0


class CardFileError(Exception):
    """The file itself cannot be read as a card file (missing columns, not CSV)."""


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise CardFileError(
                f"{path}: missing column(s) {', '.join(missing)} (need {', '.join(REQUIRED)})"
            )
        for row in reader:
            yield reader.line_num, row


class _Validator:
    """Turns CSV rows into `card` rows, collecting problems; remembers keys seen earlier in the file."""

    def __init__(self, tenants: dict[str, tuple[int, str]], cipher: FieldCipher) -> None:
        self.tenants = tenants
        self.cipher = cipher
        self.numbers: dict[tuple[int, str], int] = {}
        self.serials: dict[str, int] = {}

    def row(self, line: int, raw: dict[str, str], problems: list[Problem]) -> dict | None:
        def bad(column: str, message: str) -> None:
            problems.append(Problem(line, column, message))

        before = len(problems)
        tenant = self.tenants.get((raw.get("issuing_tenant") or "").strip())
        if tenant is None:
            bad("issuing_tenant", f"unknown tenant {raw.get('issuing_tenant')!r}"[:120])
        number = (raw.get("card_number") or "").strip().upper()
        if not CARD_NUMBER.match(number):
            bad("card_number", "a card number is 9 characters of 0-9, A-Z")
        serial = (raw.get("card_serial") or "").strip().upper()
        if not CARD_SERIAL.match(serial):
            bad("card_serial", "a card serial is 1-32 characters of 0-9, A-Z")
        bank = (raw.get("service_bank") or "").strip().upper()
        if not BANK_CODE.match(bank):
            bad("service_bank", "a bank code is 3-16 characters of 0-9, A-Z")
        id_number = bank_card = None
        try:
            id_number = normalize_id_number(raw.get("id_number") or "")
        except DomainError as err:
            bad("id_number", err.message)
        if raw.get("bank_card_number"):
            try:
                bank_card = normalize_bank_card_number(raw["bank_card_number"])
            except DomainError as err:
                bad("bank_card_number", err.message)
        name = (raw.get("holder_name") or "").strip() or None
        if name is not None and len(name) > MAX_NAME:
            bad("holder_name", f"longer than {MAX_NAME} characters")
        if tenant is not None and CARD_NUMBER.match(number):
            first = self.numbers.setdefault((tenant[0], number), line)
            if first != line:
                bad("card_number", f"duplicate of line {first} (same issuing tenant)")
        if CARD_SERIAL.match(serial):
            first = self.serials.setdefault(serial, line)
            if first != line:
                bad("card_serial", f"duplicate of line {first}")
        if len(problems) > before:
            return None
        return self._card(tenant[0], number, serial, id_number, bank_card, bank, name)

    def _card(self, tenant_id, number, serial, id_number, bank_card, bank, name) -> dict:
        c = self.cipher
        return {
            "issuing_tenant_id": tenant_id,
            "card_number": number,
            "card_serial": serial,
            "id_number_enc": c.encrypt(id_number, context=b"id_number"),
            "id_number_hash": c.lookup_hash(id_number, context=b"id_number"),
            "id_number_masked": mask_id_number(id_number),
            "bank_card_enc": c.encrypt(bank_card, context=b"bank_card") if bank_card else None,
            "bank_card_hash": c.lookup_hash(bank_card, context=b"bank_card") if bank_card else None,
            "bank_card_masked": mask_bank_card_number(bank_card) if bank_card else None,
            "service_bank_code": bank,
            "holder_name": name,
        }


async def _already_stored(session: AsyncSession, batch: list[tuple[int, dict]]) -> list[Problem]:
    problems = []
    for start in range(0, len(batch), LOOKUP_CHUNK):
        chunk = batch[start : start + LOOKUP_CHUNK]
        by_serial = {card["card_serial"]: line for line, card in chunk}
        found = await session.exec(select(Card.card_serial).where(Card.card_serial.in_(list(by_serial))))
        problems += [Problem(by_serial[s], "card_serial", "already in the database") for s in found.all()]
        by_number = {(card["issuing_tenant_id"], card["card_number"]): line for line, card in chunk}
        pairs = tuple_(Card.issuing_tenant_id, Card.card_number)
        found = await session.exec(
            select(Card.issuing_tenant_id, Card.card_number).where(pairs.in_(list(by_number)))
        )
        problems += [
            Problem(by_number[tuple(k)], "card_number", "already in the database for this tenant")
            for k in found.all()
        ]
    return sorted(problems, key=lambda p: p.line)


async def import_cards(
    sessions: async_sessionmaker[AsyncSession],
    cipher: FieldCipher,
    path: Path,
    *,
    batch_size: int = 20_000,
    keep_problems: int = 200,
    progress: Callable[[int], None] = lambda n: None,
) -> ImportSummary:
    async with sessions() as session:
        tenants = {p: (i, p) for i, p in (await session.exec(select(Tenant.id, Tenant.path))).all()}
    validator = _Validator(tenants, cipher)
    summary = ImportSummary()

    async def flush(batch: list[tuple[int, dict]], problems: list[Problem], first_line: int, last_line: int):
        if not problems:
            async with sessions() as session, session.begin():
                problems = await _already_stored(session, batch)
                if not problems:
                    now = utcnow()
                    await insert_rows(
                        session,
                        Card.__table__,
                        [card for _, card in batch],
                        {"created_at": now, "updated_at": now},
                    )
                    await append_event(
                        session,
                        tenant="cn",
                        actor=ACTOR,
                        action="cards.import",
                        target_type="card_file",
                        target_id=path.name[:96],
                        detail={"lines": [first_line, last_line], "cards": len(batch)},
                    )
                    summary.imported += len(batch)
                    summary.batches_written += 1
        if problems:
            summary.batches_refused += 1
            summary.problem_count += len(problems)
            summary.problems += problems[: max(0, keep_problems - len(summary.problems))]
        progress(last_line - first_line + 1)

    batch: list[tuple[int, dict]] = []
    problems: list[Problem] = []
    first_line = 2
    line = 1
    for line, raw in _rows(path):
        summary.rows += 1
        card = validator.row(line, raw, problems)
        if card is not None:
            batch.append((line, card))
        if summary.rows % batch_size == 0:
            await flush(batch, problems, first_line, line)
            batch, problems, first_line = [], [], line + 1
    if batch or problems:
        await flush(batch, problems, first_line, line)
    return summary
