"""Card file records → card table rows, with no database: the CPU-heavy half of `ssc cards import`.

`RowPreparer.prepare` takes a block of whole CSV records (raw bytes and the physical line number
of its first line), checks every record (ID check character, Luhn, known issuing tenant, the
formats of card number, serial and bank code), encrypts, hashes and masks the personal numbers,
and returns a `PreparedBlock`: the valid rows packed for `app.store.bulk`, the problems by line,
and each record's keys for the duplicate check — that one needs the whole file, so the importing
process does it (`card_import_batches`).

A block goes one of two ways, with the same result:

- fast: every line of the block is one record in the form generated and exported files use (no
  quotes, upper case, no stray spaces, no empty required field). One regular expression built
  from the header splits the whole block and the checks run column by column;
- exact: anything else — quoted fields, lower-case `x`, spaces in a bank card number, a refused
  record — goes through csv.reader and the record-by-record validator with its messages.

Lines are numbered like csv.DictReader's `line_num`: a record spanning lines (a quoted newline)
has the number of its last line; blank lines are no records.

Worker processes import only this module and its light dependencies (no SQLAlchemy), and get the
header, the tenants and the cipher once, through `start_worker`.
"""

from __future__ import annotations

import csv
import gc
import io
import re
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from app.domain.bankcard import (
    all_canonical_bank_card_numbers,
    mask_canonical_bank_card_numbers,
    normalize_bank_card_number,
)
from app.domain.errors import DomainError
from app.domain.idnumber import all_canonical_id_numbers, mask_canonical_id_numbers, normalize_id_number
from app.store.bulk import PackedRows, pack_rows
from app.store.crypto import FieldCipher

REQUIRED = ("issuing_tenant", "card_number", "card_serial", "id_number", "service_bank")
CARD_NUMBER = re.compile(r"^[0-9A-Z]{9}$")
CARD_SERIAL = re.compile(r"^[0-9A-Z]{1,32}$")
BANK_CODE = re.compile(r"^[0-9A-Z]{3,16}$")
MAX_NAME = 64
ID_CONTEXT = b"id_number"
BANK_CONTEXT = b"bank_card"
# The card columns a prepared row fills, in the order of its values.
CARD_COLUMNS = (
    "issuing_tenant_id",
    "card_number",
    "card_serial",
    "id_number_enc",
    "id_number_hash",
    "id_number_masked",
    "bank_card_enc",
    "bank_card_hash",
    "bank_card_masked",
    "service_bank_code",
    "holder_name",
)
BLOB_COLUMNS = ("id_number_enc", "id_number_hash", "bank_card_enc", "bank_card_hash")

# A field of the fast path in its canonical form: already what the exact path would make of it.
_CANONICAL = {
    "issuing_tenant": r'([^\s,"]+)',
    "card_number": r"([0-9A-Z]{9})",
    "card_serial": r"([0-9A-Z]{1,32})",
    "id_number": r"([0-9]{17}[0-9X])",
    "service_bank": r"([0-9A-Z]{3,16})",
    # empty, or 1-64 characters with no whitespace at either end
    "holder_name": r'((?:[^\s,"](?:[^,"\r\n]{0,62}[^\s,"])?)?)',  # 62 = MAX_NAME - 2
    "bank_card_number": r"([0-9]{16,19}|)",
}
_OTHER_FIELD = r'[^,"\r\n]*'


@dataclass(frozen=True)
class Problem:
    line: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.column}: {self.message}"


class CardFileError(Exception):
    """The file itself cannot be read as a card file (missing columns, not CSV, not UTF-8)."""


@dataclass
class PreparedBlock:
    """One block's records, indexed 0..n-1 in file order.

    `packed` holds the rows of the valid records, each under its record index as rowid; a record
    with a problem has no row. `numbers` and `serials` are every record's claims for the duplicate
    check: `number_claim(tenant id, card number)` and the card serial, "" where the value is unusable.
    """

    lines: Sequence[int]
    numbers: Sequence[str]
    serials: Sequence[str]
    problems: list[tuple[int, Problem]]
    packed: PackedRows

    # Claims travel between processes as two strings: pickling two small objects per record would
    # cost more than preparing them. They hold no newline (checked formats, an integer id).
    def __getstate__(self) -> tuple:
        return self.lines, "\n".join(self.numbers), "\n".join(self.serials), self.problems, self.packed

    def __setstate__(self, state: tuple) -> None:
        lines, numbers, serials, self.problems, self.packed = state
        self.lines = lines
        self.numbers = numbers.split("\n") if lines else []
        self.serials = serials.split("\n") if lines else []


def number_claim(tenant_id: int, card_number: str) -> str:
    return f"{tenant_id}\t{card_number}"


def missing_columns(fieldnames: Sequence[str]) -> list[str]:
    return [c for c in REQUIRED if c not in fieldnames]


def physical_lines(text: str | bytes) -> int:
    """Lines ended in `text`, counted like a file opened with newline="" (\\n, \\r\\n and \\r)."""
    nl, cr, crlf = ("\n", "\r", "\r\n") if isinstance(text, str) else (b"\n", b"\r", b"\r\n")
    return text.count(nl) + text.count(cr) - text.count(crlf)


class RowPreparer:
    def __init__(self, fieldnames: Sequence[str], tenants: Mapping[str, int], cipher: FieldCipher) -> None:
        self._fieldnames = list(fieldnames)
        self._tenants = tenants
        self._claim_prefixes = {path: number_claim(i, "") for path, i in tenants.items()}
        self._cipher = cipher
        # Like csv.DictReader, a repeated column name means its last occurrence.
        last = {name: i for i, name in enumerate(self._fieldnames)}
        fields, self._captured = [], []
        for i, name in enumerate(self._fieldnames):
            if name in _CANONICAL and last[name] == i:
                fields.append(_CANONICAL[name])
                self._captured.append(name)
            else:
                fields.append(_OTHER_FIELD)
        self._line = re.compile("^" + ",".join(fields) + "\r?$", re.MULTILINE)

    def prepare(self, first_line: int, data: bytes) -> PreparedBlock:
        try:
            text = data.decode()
        except UnicodeDecodeError as err:
            line = first_line + physical_lines(data[: err.start])
            raise CardFileError(f"line {line}: not UTF-8 text") from None
        return self._fast(first_line, text) or self._exact(first_line, text)

    def _fast(self, first_line: int, text: str) -> PreparedBlock | None:
        matches = self._line.findall(text)
        lines = physical_lines(text) + (0 if text.endswith(("\n", "\r")) else 1)
        if not matches or len(matches) != lines:
            return None
        columns = dict(zip(self._captured, zip(*matches, strict=True), strict=True))
        count = len(matches)
        tenant_ids = list(map(self._tenants.get, columns["issuing_tenant"]))
        if None in tenant_ids:
            return None
        none = (None,) * count
        id_numbers = columns["id_number"]
        bank_cards = [b or None for b in columns.get("bank_card_number", none)]
        present = [b for b in bank_cards if b is not None]
        if not (all_canonical_id_numbers(id_numbers) and all_canonical_bank_card_numbers(present)):
            return None
        names = [n or None for n in columns.get("holder_name", none)]
        numbers, serials = columns["card_number"], columns["card_serial"]
        values = (tenant_ids, numbers, serials, id_numbers, bank_cards, columns["service_bank"], names)
        claim_prefixes = map(self._claim_prefixes.__getitem__, columns["issuing_tenant"])
        return PreparedBlock(
            lines=range(first_line, first_line + count),
            numbers=list(map(str.__add__, claim_prefixes, numbers)),
            serials=serials,
            problems=[],
            packed=self._pack(range(count), *values),
        )

    def _exact(self, first_line: int, text: str) -> PreparedBlock:
        reader = csv.reader(io.StringIO(text, newline=""))
        lines, numbers, serials, problems = [], [], [], []
        valid: list[int] = []
        values: list[tuple] = []
        try:
            for row in reader:
                if not row:  # csv.DictReader skips blank lines
                    continue
                line = first_line + reader.line_num - 1
                found: list[Problem] = []
                raw = dict(zip(self._fieldnames, row, strict=False))  # short rows: missing keys
                number, serial, card = self._record(line, raw, found)
                index = len(lines)
                lines.append(line)
                numbers.append(number)
                serials.append(serial)
                problems += [(index, p) for p in found]
                if card is not None:
                    valid.append(index)
                    values.append(card)
        except csv.Error as err:
            raise CardFileError(f"line {first_line + reader.line_num - 1}: {err}") from None
        columns = list(zip(*values, strict=True)) if values else [[] for _ in range(7)]
        return PreparedBlock(lines, numbers, serials, problems, self._pack(valid, *columns))

    def _record(
        self, line: int, raw: dict[str, str], problems: list[Problem]
    ) -> tuple[str, str, tuple | None]:
        """Check one record: (number claim, serial claim, the card's values or None)."""

        def bad(column: str, message: str) -> None:
            problems.append(Problem(line, column, message))

        tenant = self._tenants.get((raw.get("issuing_tenant") or "").strip())
        if tenant is None:
            bad("issuing_tenant", f"unknown tenant {raw.get('issuing_tenant')!r}"[:120])
        number = (raw.get("card_number") or "").strip().upper()
        number_ok = CARD_NUMBER.match(number) is not None
        if not number_ok:
            bad("card_number", "a card number is 9 characters of 0-9, A-Z")
        serial = (raw.get("card_serial") or "").strip().upper()
        serial_ok = CARD_SERIAL.match(serial) is not None
        if not serial_ok:
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
        claims = (
            number_claim(tenant, number) if tenant is not None and number_ok else "",
            serial if serial_ok else "",
        )
        if problems:
            return *claims, None
        return *claims, (tenant, number, serial, id_number, bank_card, bank, name)

    def _pack(
        self,
        rowids: Sequence[int],
        tenant_ids: Sequence[int],
        numbers: Sequence[str],
        serials: Sequence[str],
        id_numbers: Sequence[str],
        bank_cards: Sequence[str | None],
        banks: Sequence[str],
        names: Sequence[str | None],
    ) -> PackedRows:
        """The rows of valid records, their ID and bank card numbers normalized (canonical)."""
        c = self._cipher
        columns = {
            "issuing_tenant_id": tenant_ids,
            "card_number": numbers,
            "card_serial": serials,
            "id_number_enc": c.encrypt_many(id_numbers, context=ID_CONTEXT),
            "id_number_hash": c.lookup_hashes(id_numbers, context=ID_CONTEXT),
            "id_number_masked": mask_canonical_id_numbers(id_numbers),
            "bank_card_enc": _on_present(lambda v: c.encrypt_many(v, context=BANK_CONTEXT), bank_cards),
            "bank_card_hash": _on_present(lambda v: c.lookup_hashes(v, context=BANK_CONTEXT), bank_cards),
            "bank_card_masked": _on_present(mask_canonical_bank_card_numbers, bank_cards),
            "service_bank_code": banks,
            "holder_name": names,
        }
        return pack_rows(rowids, columns, BLOB_COLUMNS)


def _on_present(fn: Callable[[list], list], values: Sequence) -> list:
    """`fn` applied to the values that are not None, with None kept in place."""
    present = [v for v in values if v is not None]
    if len(present) == len(values):
        return fn(present)
    results = iter(fn(present))
    return [None if v is None else next(results) for v in values]


_worker: RowPreparer | None = None


def start_worker(fieldnames: Sequence[str], tenants: Mapping[str, int], cipher: FieldCipher) -> None:
    """Process pool initializer: one preparer per worker process."""
    global _worker
    # Ctrl-C reaches the whole process group; the importing process handles it and stops the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Prepared rows hold no reference cycles; the cyclic collector would only rescan them.
    gc.disable()
    _worker = RowPreparer(fieldnames, tenants, cipher)


def prepare_in_worker(first_line: int, data: bytes) -> PreparedBlock:
    assert _worker is not None, "start_worker() runs first in every worker"
    return _worker.prepare(first_line, data)
