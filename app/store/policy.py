"""Writing the business-plane policy projection and its change log in the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy import delete, insert, text
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.store.tables import PolicyChange, PolicyLine
from app.store.tables.common import utcnow

# Any constant works; it only has to be the same for every writer of the log.
POLICY_LOG_LOCK_KEY = 0x55C_0001

Rule = tuple[str, ...]


async def _lock_log(session: AsyncSession) -> None:
    # Serialise appends so that log ids become visible in id order: a tailer reading `id > last_seen`
    # then never skips an entry that commits late. SQLite serialises writers by itself.
    if session.bind.dialect.name == "postgresql":
        await session.exec(text("select pg_advisory_xact_lock(:k)"), params={"k": POLICY_LOG_LOCK_KEY})


@dataclass(frozen=True)
class ProjectedLine:
    """One policy line and the row it projects ("grant", "outlet" or "block", and that row's id)."""

    ptype: str
    rule: Rule
    source: str
    source_id: str

    def row(self) -> dict[str, str | None]:
        values = list(self.rule) + [None] * (7 - len(self.rule))
        return {
            "ptype": self.ptype,
            "source": self.source,
            "source_id": self.source_id,
            **{f"v{i}": v for i, v in enumerate(values)},
        }


def line_rule(line: PolicyLine) -> Rule:
    values = (line.v0, line.v1, line.v2, line.v3, line.v4, line.v5, line.v6)
    return tuple(v for v in values if v is not None)


async def add_lines(session: AsyncSession, lines: Sequence[ProjectedLine]) -> None:
    """Insert lines and their log entries with two executemany statements (bulk grants are large)."""
    if not lines:
        return
    await _lock_log(session)
    await session.exec(insert(PolicyLine), params=[line.row() for line in lines])
    await session.exec(
        insert(PolicyChange),
        params=[
            {"op": "add", "ptype": line.ptype, "rule": orjson.dumps(line.rule).decode(), "at": utcnow()}
            for line in lines
        ],
    )


async def remove_source_lines(session: AsyncSession, *, source: str, source_ids: Iterable[str]) -> int:
    """Remove every line projected from the given rows; returns how many were removed."""
    ids = list(source_ids)
    if not ids:
        return 0
    lines = (
        await session.exec(
            select(PolicyLine).where(PolicyLine.source == source, PolicyLine.source_id.in_(ids))
        )
    ).all()
    if not lines:
        return 0
    await _lock_log(session)
    session.add_all(
        PolicyChange(op="remove", ptype=line.ptype, rule=orjson.dumps(line_rule(line)).decode())
        for line in lines
    )
    await session.exec(delete(PolicyLine).where(PolicyLine.id.in_([line.id for line in lines])))
    await session.flush()
    return len(lines)
