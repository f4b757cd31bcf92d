"""Reading a card file in blocks and preparing them, in worker processes or in this one.

The importing process only cuts the file into blocks of raw bytes — about `block_bytes`, extended
to the end of a line, and further while the block's count of `"` is odd, so a quoted newline never
splits a record — and counts their lines, which C does for it. Everything per record (parsing,
checks, AES-GCM, HMACs, masks) happens in `card_rows.RowPreparer`, in a process pool while this
process writes earlier blocks. Results come back in file order.

The pool uses the "forkserver" start method: workers are forked from a clean server process, never
from this one, which runs an event loop and aiosqlite threads. That server imports the program's
main module once (as multiprocessing does), so a script calling `import_cards` keeps its top level
behind `if __name__ == "__main__"`. Small files stay in this process: a pool costs a few tenths of a
second to start.
"""

from __future__ import annotations

import asyncio
import csv
import io
import multiprocessing
import os
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from app.ops.cards.imports.rows import (
    REQUIRED,
    CardFileError,
    PreparedBlock,
    RowPreparer,
    missing_columns,
    physical_lines,
    prepare_in_worker,
    start_worker,
)
from app.store.crypto import FieldCipher

BLOCK_BYTES = 1 << 20
# Below this size a file is prepared in this process (~17,000 generated cards).
POOL_MIN_BYTES = 2 * BLOCK_BYTES
# Blocks handed to the pool ahead of the one being written, per worker.
AHEAD_PER_WORKER = 2


@dataclass(frozen=True)
class CardFile:
    path: Path
    fieldnames: list[str]
    first_line: int  # line number of the first record
    data_offset: int  # byte offset of the first record

    @classmethod
    def open(cls, path: Path) -> CardFile:
        """Read the header; raises CardFileError when a required column is missing."""
        with path.open("rb") as fh:
            head = _complete_record(fh, fh.readline())
        try:
            text = head.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise CardFileError(f"{path}: the header is not UTF-8 text") from None
        reader = csv.reader(io.StringIO(text, newline=""))
        fieldnames = next(reader, [])
        missing = missing_columns(fieldnames)
        if missing:
            raise CardFileError(
                f"{path}: missing column(s) {', '.join(missing)} (need {', '.join(REQUIRED)})"
            )
        # The header record ends after csv's line_num lines (not always where readline stopped: a
        # file whose lines end in a bare \r is one "line" to readline).
        header = "".join(islice(io.StringIO(text, newline=""), reader.line_num))
        offset = len(head) - len(text.encode()) + len(header.encode())  # the BOM, if any, counts
        return cls(path, fieldnames, 1 + reader.line_num, offset)

    def blocks(self, block_bytes: int) -> Iterator[tuple[int, bytes]]:
        """(line number of its first line, raw bytes) of each block, in file order."""
        line = self.first_line
        with self.path.open("rb") as fh:
            fh.seek(self.data_offset)
            while data := fh.read(block_bytes):
                block = _complete_record(fh, data + fh.readline())
                yield line, block
                line += physical_lines(block)


def _complete_record(fh, data: bytes) -> bytes:
    """Extend `data` line by line while it ends inside a quoted field (an odd count of quotes)."""
    odd = data.count(b'"') % 2
    parts = [data]
    while odd:
        more = fh.readline()
        if not more:
            break
        parts.append(more)
        odd ^= more.count(b'"') % 2
    return b"".join(parts)


def worker_count(card_file: CardFile, requested: int | None) -> int:
    """0 means: prepare in this process."""
    if requested is not None:
        return requested
    size = card_file.path.stat().st_size - card_file.data_offset
    return 0 if size < POOL_MIN_BYTES else os.cpu_count() or 1


class PreparedBlocks:
    """`async with PreparedBlocks(...) as blocks: async for block in blocks: ...`

    Entering starts the pool and hands it the first blocks at once, so the workers start while the
    caller prepares its transaction. Leaving (also on an error or Ctrl-C) cancels what is queued
    and shuts the workers down.
    """

    def __init__(
        self,
        card_file: CardFile,
        tenants: Mapping[str, int],
        cipher: FieldCipher,
        *,
        workers: int,
        block_bytes: int = BLOCK_BYTES,
    ) -> None:
        self._file = card_file
        self._tenants = tenants
        self._cipher = cipher
        self._workers = workers
        self._block_bytes = block_bytes
        self._pool: ProcessPoolExecutor | None = None
        self._pending: deque[Future] = deque()
        self._source: Iterator[tuple[int, bytes]] | None = None

    async def __aenter__(self) -> PreparedBlocks:
        self._source = self._file.blocks(self._block_bytes)
        if self._workers > 0:
            self._pool = ProcessPoolExecutor(
                self._workers,
                mp_context=multiprocessing.get_context("forkserver"),
                initializer=start_worker,
                initargs=(self._file.fieldnames, dict(self._tenants), self._cipher),
            )
            for _ in range(self._workers * AHEAD_PER_WORKER):
                self._submit()
        return self

    async def __aexit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _submit(self) -> None:
        block = next(self._source, None)
        if block is not None:
            self._pending.append(self._pool.submit(prepare_in_worker, *block))

    async def __aiter__(self) -> AsyncIterator[PreparedBlock]:
        if self._pool is None:
            preparer = RowPreparer(self._file.fieldnames, self._tenants, self._cipher)
            for first_line, data in self._source:
                yield preparer.prepare(first_line, data)
            return
        while self._pending:
            block = await asyncio.wrap_future(self._pending[0])
            self._pending.popleft()
            self._submit()
            yield block
