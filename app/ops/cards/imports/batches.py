"""Prepared blocks → all-or-nothing batches of `batch_size` records, with the file's duplicate check.

Batches count records, whatever the blocks' sizes: a batch can take the end of one block and the
start of the next. A batch with any problem — from the block's checks or a duplicate found here —
is refused whole.

Duplicates: the first record to claim a (tenant, card number) or a card serial keeps it, and every
later record claiming it again is a duplicate of that line — also when the first record was refused
for another reason, as it would still be a duplicate in a fixed file. Blocks without repeats are
checked with set or dict operations in C; a block with a repeat is walked record by record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter

from app.ops.cards.imports.rows import PreparedBlock, Problem


@dataclass
class Batch:
    first_line: int
    last_line: int = 0
    records: int = 0
    # (block, record indexes) slices, in file order
    segments: list[tuple[PreparedBlock, range]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


class Batcher:
    def __init__(self, batch_size: int, first_line: int) -> None:
        self._batch_size = batch_size
        self._claims = _Claims()
        self._batch = Batch(first_line)

    def add(self, block: PreparedBlock) -> list[Batch]:
        """Take in the next block; returns the batches it completes."""
        # Stable sort: a record's own problems come before its duplicate claims, as columns go.
        problems = sorted(block.problems + self._duplicates(block), key=itemgetter(0))
        done, start, p = [], 0, 0
        while start < len(block.lines):
            batch = self._batch
            stop = min(len(block.lines), start + self._batch_size - batch.records)
            while p < len(problems) and problems[p][0] < stop:
                batch.problems.append(problems[p][1])
                p += 1
            batch.segments.append((block, range(start, stop)))
            batch.records += stop - start
            batch.last_line = block.lines[stop - 1]
            if batch.records == self._batch_size:
                done.append(batch)
                self._batch = Batch(batch.last_line + 1)
            start = stop
        return done

    def finish(self) -> Batch | None:
        """The last, partial batch, if any."""
        return self._batch if self._batch.records else None

    def _duplicates(self, block: PreparedBlock) -> list[tuple[int, Problem]]:
        if self._claims.all_new(block):
            return []
        numbers, serials = self._claims.first_lines()
        found = []
        for index, (line, number, serial) in enumerate(
            zip(block.lines, block.numbers, block.serials, strict=True)
        ):
            if number:
                first = numbers.setdefault(number, line)
                if first != line:
                    message = f"duplicate of line {first} (same issuing tenant)"
                    found.append((index, Problem(line, "card_number", message)))
            if serial:
                first = serials.setdefault(serial, line)
                if first != line:
                    found.append((index, Problem(line, "card_serial", f"duplicate of line {first}")))
        return found


class _Claims:
    """The (tenant, card number) and card serial keys claimed so far, and the line of each first claim.

    While no key repeats, the keys go into two sets: a block of new keys costs one set update each,
    half what dicts of lines cost on tables of a million keys that no CPU cache holds. The first
    repeat, or the first record without a usable key, turns them into dicts of first lines, rebuilt
    from the keys of the earlier blocks kept for that.
    """

    def __init__(self) -> None:
        self._numbers: set = set()
        self._serials: set = set()
        self._earlier: list[tuple[Sequence, Sequence, Sequence[int]]] = []
        self._lines: tuple[dict, dict] | None = None

    def all_new(self, block: PreparedBlock) -> bool:
        """Claim the block's keys if each is present and none was claimed before (nor repeats in the
        block); otherwise claim nothing and return False."""
        numbers, serials, lines = block.numbers, block.serials, block.lines
        if "" in numbers or "" in serials:
            return False
        if self._lines is not None:
            new_numbers, new_serials = (
                dict(zip(numbers, lines, strict=True)),
                dict(zip(serials, lines, strict=True)),
            )
            first_numbers, first_serials = self._lines
            if (
                len(new_numbers) == len(numbers)
                and len(new_serials) == len(serials)
                # against the keys views, so that only the block's keys are looked up
                and new_numbers.keys().isdisjoint(first_numbers.keys())
                and new_serials.keys().isdisjoint(first_serials.keys())
            ):
                first_numbers.update(new_numbers)
                first_serials.update(new_serials)
                return True
            return False
        had_numbers, had_serials = len(self._numbers), len(self._serials)
        self._numbers.update(numbers)
        self._serials.update(serials)
        if len(self._numbers) - had_numbers == len(numbers) and len(self._serials) - had_serials == len(
            serials
        ):
            self._earlier.append((numbers, serials, lines))
            return True
        return False  # the sets now hold some of this block's keys: first_lines() rebuilds without them

    def first_lines(self) -> tuple[dict, dict]:
        """(key → first line) dicts for the numbers and the serials, for the caller to update."""
        if self._lines is None:
            first_numbers, first_serials = {}, {}
            for numbers, serials, lines in self._earlier:  # every key in them is unique
                first_numbers.update(zip(numbers, lines, strict=True))
                first_serials.update(zip(serials, lines, strict=True))
            self._lines = first_numbers, first_serials
            self._numbers, self._serials, self._earlier = set(), set(), []
        return self._lines
