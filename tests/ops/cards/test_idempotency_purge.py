"""Purging idempotency records: everything older than the cutoff goes, in chunks, the rest stays, and
each run leaves one audit event in the national chain."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from sqlmodel import select

from app.ops.cards.idempotency_purge import purge_idempotency_records
from app.ops.tenants.apply import apply_tenant_files
from app.store.tables import AuditEvent
from tests.idempotency_records import HOUR, OUTLETS, add_records, remaining


async def purge_events(sessions) -> list[AuditEvent]:
    async with sessions() as session:
        query = select(AuditEvent).where(AuditEvent.action == "idempotency.purge").order_by(AuditEvent.id)
        return list((await session.exec(query)).all())


@pytest.fixture
async def tree(sessions, tenants_dir):
    await apply_tenant_files(sessions, tenants_dir)
    return sessions


# Old and recent records interleaved in primary-key order, so a chunk boundary that strays past its
# last old record, or a chunk that skips one, shows up.
AGES = {(outlet, f"key-{n:04d}"): (100 if n % 3 else 1) * HOUR for outlet in OUTLETS for n in range(1, 8)}
OLD = {pk for pk, age in AGES.items() if age > 72 * HOUR}


@pytest.mark.parametrize("batch_size", [1, 3, 14, 10_000])
async def test_old_records_go_in_chunks_and_recent_ones_stay(tree, batch_size):
    sessions = tree
    await add_records(sessions, AGES)
    cutoff = datetime.now(UTC) - 72 * HOUR
    deleted = await purge_idempotency_records(sessions, older_than=cutoff, batch_size=batch_size)
    assert deleted == len(OLD) == 15
    assert await remaining(sessions) == set(AGES) - OLD
    [event] = await purge_events(sessions)
    assert (event.tenant, event.actor, event.action) == ("cn", "cli:idempotency-purge", "idempotency.purge")
    detail = orjson.loads(event.detail)
    # Full chunks, then the last one (which may find nothing left).
    assert detail == {
        "deleted": 15,
        "older_than": cutoff.isoformat(),
        "batches": len(OLD) // batch_size + 1,
    }


async def test_a_run_with_nothing_to_purge_is_audited_too(tree):
    sessions = tree
    await add_records(sessions, {(OUTLETS[0], "key-recent"): HOUR})
    cutoff = datetime.now(UTC) - 72 * HOUR
    assert await purge_idempotency_records(sessions, older_than=cutoff) == 0
    assert await purge_idempotency_records(sessions, older_than=cutoff) == 0
    assert await remaining(sessions) == {(OUTLETS[0], "key-recent")}
    events = await purge_events(sessions)
    assert [orjson.loads(e.detail)["deleted"] for e in events] == [0, 0]
    assert events[1].seq == events[0].seq + 1 and events[1].prev_hash == events[0].hash
