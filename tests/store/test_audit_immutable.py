"""On PostgreSQL the database itself refuses to change or remove audit events (migration 0005): no
UPDATE, DELETE or TRUNCATE gets through, except the archive's own deletions."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.store.audit import append_event
from app.store.db import make_sync_engine


@pytest.mark.parametrize(
    "statement",
    [
        "update audit_event set actor = 'someone else'",
        "delete from audit_event",
        "truncate audit_event",
    ],
)
async def test_postgres_refuses_to_change_audit_events(pg_url, sessions, statement):
    async with sessions() as session, session.begin():
        await append_event(session, tenant="cn", actor="a", action="x", target_type="t", target_id="1")
    engine = make_sync_engine(pg_url)
    try:
        refused = pytest.raises(DBAPIError, match="audit events cannot be changed or removed")
        with refused, engine.begin() as connection:
            connection.execute(text(statement))
        with engine.connect() as connection:
            assert connection.execute(text("select count(*), min(actor) from audit_event")).one() == (1, "a")
        # The archive's transactions may remove events (and only remove them).
        with engine.begin() as connection:
            connection.execute(text("set local ssc.audit_archiving = 'on'"))
            with pytest.raises(DBAPIError), connection.begin_nested():
                connection.execute(text("update audit_event set actor = 'b'"))
            connection.execute(text("delete from audit_event"))
        with engine.connect() as connection:
            assert connection.execute(text("select count(*) from audit_event")).scalar() == 0
    finally:
        engine.dispose()
