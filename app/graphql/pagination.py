"""Relay connections with keyset cursors: pages are `WHERE key > :after ORDER BY key LIMIT n+1`,
never OFFSET or a Python slice of the whole list."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import strawberry

from app.ops.errors import OpsError

T = TypeVar("T")
MAX_PAGE = 200
DEFAULT_PAGE = 50


@strawberry.type(description="Where a page sits in the whole list.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether another page follows this one.")
    end_cursor: str | None = strawberry.field(description="Pass as `after` to get the next page.")


@strawberry.type(description="One item of a list, with the cursor that points just after it.")
class Edge(Generic[T]):
    node: T = strawberry.field(description="The item.")
    cursor: str = strawberry.field(description="Opaque position of this item in the list.")


@strawberry.type(description="A page of a list.")
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The items on this page, in order.")
    page_info: PageInfo = strawberry.field(description="Whether there is more, and how to get it.")
    total_count: int = strawberry.field(description="How many items the whole list has, across all pages.")


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode()


def decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        return base64.b64decode(cursor.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise OpsError("BAD_INPUT", "not a cursor from this list", field="after") from None


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE
    if not 1 <= first <= MAX_PAGE:
        raise OpsError("BAD_INPUT", f"first must be between 1 and {MAX_PAGE}", field="first")
    return first


def build_connection(
    rows: Sequence, size: int, total: int, key: Callable[[object], str], node: Callable
) -> Connection:
    """`rows` holds up to size+1 rows fetched after the cursor; the extra one only says there is more."""
    page = rows[:size]
    edges = [Edge(node=node(row), cursor=encode_cursor(key(row))) for row in page]
    return Connection(
        edges=edges,
        page_info=PageInfo(has_next_page=len(rows) > size, end_cursor=edges[-1].cursor if edges else None),
        total_count=total,
    )
