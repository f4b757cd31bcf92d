"""Tables people open: CSV (UTF-8 with a byte-order mark, so spreadsheet programs on Chinese desktops
read the headers right) and XLSX (XlsxWriter in constant-memory mode: rows go to disk as they come,
so a table of a million rows costs no more memory than one of ten).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from pathlib import Path

import xlsxwriter

BOM = "\ufeff"
ROWS_PER_CHUNK = 1_000
# Excel refuses cells over 32,767 characters; a longer text is cut there, with a mark.
MAX_CELL = 32_000


def _csv_text(rows: Iterable[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()


def csv_header(headers: list[str]) -> bytes:
    return BOM.encode() + _csv_text([headers])


def csv_lines(rows: Iterable[list[str]]) -> Iterator[bytes]:
    """Rows as CSV, a thousand per chunk, for streaming."""
    batch: list[list[str]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= ROWS_PER_CHUNK:
            yield _csv_text(batch)
            batch = []
    if batch:
        yield _csv_text(batch)


def csv_chunks(headers: list[str], rows: Iterable[list[str]]) -> Iterator[bytes]:
    yield csv_header(headers)
    yield from csv_lines(rows)


def write_csv(path: Path, headers: list[str], rows: Iterable[list[str]]) -> int:
    """Write the table to `path`; returns the number of rows."""
    counted = [0]

    def counting() -> Iterator[list[str]]:
        for row in rows:
            counted[0] += 1
            yield row

    with path.open("wb") as out:
        for chunk in csv_chunks(headers, counting()):
            out.write(chunk)
    return counted[0]


class XlsxTable:
    """One sheet: a title line, the headers (bold, frozen), then rows as they are added."""

    def __init__(self, path: Path, title: str, headers: list[str]) -> None:
        self.workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False})
        self.sheet = self.workbook.add_worksheet("报表")
        bold = self.workbook.add_format({"bold": True})
        for column, header in enumerate(headers):
            self.sheet.set_column(column, column, max(10, min(40, len(header) * 3)))
        self.sheet.write_string(0, 0, title, bold)
        for column, header in enumerate(headers):
            self.sheet.write_string(1, column, header, bold)
        self.sheet.freeze_panes(2, 0)
        self.rows = 0

    def add(self, rows: Iterable[list[str]]) -> None:
        write = self.sheet.write_string
        for row in rows:
            line = self.rows + 2
            for column, value in enumerate(row):
                write(line, column, value if len(value) <= MAX_CELL else value[:MAX_CELL] + "…")
            self.rows += 1

    def close(self) -> None:
        self.workbook.close()


def write_xlsx(path: Path, title: str, headers: list[str], rows: Iterable[list[str]]) -> int:
    """Write the table to `path` as a workbook; returns the number of rows."""
    table = XlsxTable(path, title, headers)
    try:
        table.add(rows)
    finally:
        table.close()
    return table.rows
