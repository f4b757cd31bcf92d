"""SQL conditions the use cases of every area share."""

from __future__ import annotations

from sqlmodel import or_


def in_subtree(column, path: str):
    """SQL for "column is `path` or below it"; the "/" keeps cn/4400001 out of cn/440000."""
    return or_(column == path, column.like(f"{path}/%"))
