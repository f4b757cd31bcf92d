"""Large in-memory work done in slices that let the worker's other requests run in between.

A bulk grant builds, sends and applies 100,000 of everything (outlets read, grants returned, policy
lines, log entries) on the same event loop that answers partners' cardStatus calls. Done in one go,
each step holds the loop for 100–400 ms and every partner call waiting behind it is that much
later (issue 16: their p99 during a bulk grant ≤ 3× without one). A partner call waits behind a
slice at each of its own awaits, so slices are small: 1,000 items, about a millisecond.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import TypeVar

from sqlalchemy import Row, Select
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")
R = TypeVar("R")
SLICE = 1_000


async def in_slices(items: Sequence[T], size: int = SLICE) -> AsyncIterator[Sequence[T]]:
    """`items` slice by slice, letting other tasks run before each slice but the first."""
    for start in range(0, len(items), size):
        if start:
            await asyncio.sleep(0)
        yield items[start : start + size]


async def mapped(function: Callable[[T], R], items: Sequence[T], size: int = SLICE) -> list[R]:
    """`[function(x) for x in items]`, built slice by slice."""
    done: list[R] = []
    async for part in in_slices(items, size):
        done += map(function, part)
    return done


async def streamed(session: AsyncSession, query: Select, size: int = SLICE) -> list[Row]:
    """The rows of a query, fetched a slice at a time (a server-side cursor on PostgreSQL): fetched
    in one go, 100,000 rows are converted in one piece of ~100 ms."""
    rows: list[Row] = []
    async for part in (await session.stream(query)).partitions(size):
        rows += part
    return rows


async def gathered(parts: Iterable[Sequence[T]]) -> list[T]:
    """The parts (e.g. a result's partitions, fetched as they are iterated) in one list, letting other
    tasks run between parts."""
    done: list[T] = []
    for part in parts:
        done += part
        await asyncio.sleep(0)
    return done
