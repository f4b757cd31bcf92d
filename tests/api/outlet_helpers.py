"""Outlet helpers shared by the outlet tests: the tenants they use, the state an outlet mutation may
touch (so a refusal can be shown to have changed nothing), and the SQL a request runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, event, func
from sqlmodel import select

from app.store.tables import AuditEvent, Grant, Outlet, PartnerKey, PolicyChange, PolicyLine

GZ, SZ, TH = "cn/440000/440100", "cn/440000/440300", "cn/440000/440100/440106"


async def db_state(sessions) -> dict:
    """Everything an outlet mutation may touch, so a refusal can be shown to have changed nothing."""
    async with sessions() as session:
        outlets = (await session.exec(select(Outlet).order_by(Outlet.id))).all()
        grants = (await session.exec(select(Grant).order_by(Grant.id))).all()
        keys = (await session.exec(select(PartnerKey).order_by(PartnerKey.id))).all()
        events = (await session.exec(select(AuditEvent).order_by(AuditEvent.id))).all()
        lines = (await session.exec(select(func.count()).select_from(PolicyLine))).one()
        changes = (await session.exec(select(func.count()).select_from(PolicyChange))).one()
    return {
        "outlets": [o.model_dump() for o in outlets],
        "grants": [(g.id, g.state, g.version) for g in grants],
        "keys": [(k.id, k.revoked_at) for k in keys],
        "lines": lines,
        "changes": changes,
        "events": [(e.tenant, e.seq, e.action, e.decision, e.actor) for e in events],
    }


@contextmanager
def recorded_statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements `engine` runs inside the block, for counting the queries of a request."""
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        if "policy_" not in statement:  # the policy tailer polls its log on the same engine
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
