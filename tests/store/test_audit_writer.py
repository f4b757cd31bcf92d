"""The audit writer: group commits that keep every chain intact, next to transactional writers, and
never answer a request whose event did not commit. On SQLite and PostgreSQL (db_url)."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import sqlite3
import time

from sqlmodel import func, select

from app.domain.audit_chain import GENESIS_HASH, chain_hash
from app.store.audit import append_event, event_content
from app.store.audit_writer import AuditWriter
from app.store.db import make_async_engine, make_session_factory
from app.store.tables import AuditEvent

TENANTS = ("cn", "cn/440000", "cn/440000/440100")


def fields(i: int) -> dict:
    return {
        "actor": "outlet:test",
        "action": "card.status",
        "target_type": "card",
        "target_id": str(i),
        "decision": "allow",
        "detail": {"i": i, "explanation": {"roles": ["outlet:test", "kind:hotline"]}},
        "request_id": f"r{i}",
    }


async def events_of(sessions) -> list[AuditEvent]:
    async with sessions() as session:
        found = await session.exec(select(AuditEvent).order_by(AuditEvent.tenant, AuditEvent.seq))
        return list(found.all())


def assert_intact(events: list[AuditEvent]) -> None:
    for _, chain in itertools.groupby(events, key=lambda e: e.tenant):
        chain = list(chain)
        assert [e.seq for e in chain] == list(range(1, len(chain) + 1))
        assert chain[0].prev_hash == GENESIS_HASH
        for prev, cur in itertools.pairwise(chain):
            assert cur.prev_hash == prev.hash
        for event in chain:
            assert event.hash == chain_hash(event.prev_hash, event_content(event))


async def test_concurrent_appends_are_committed_in_batches_as_intact_chains(sessions, db_url):
    writer = AuditWriter(db_url)
    try:
        await asyncio.gather(*(writer.append(TENANTS[i % 3], **fields(i)) for i in range(300)))
    finally:
        await writer.close()
    events = await events_of(sessions)
    assert len(events) == 300
    assert_intact(events)
    assert {e.tenant for e in events} == set(TENANTS)
    # Each append returned only after its own event was readable by others.
    assert sorted(int(e.target_id) for e in events) == list(range(300))


async def test_group_commits_interleave_with_transactional_appends(sessions, db_url):
    """Change transactions (append_event) and the writer take the same chain locks."""
    writer = AuditWriter(db_url)

    async def change(i: int) -> None:
        async with sessions() as session, session.begin():
            await append_event(session, tenant="cn/440000", **fields(1000 + i))

    try:
        await asyncio.gather(
            *(writer.append("cn/440000", **fields(i)) for i in range(60)), *(change(i) for i in range(20))
        )
    finally:
        await writer.close()
    events = await events_of(sessions)
    assert len(events) == 80
    assert_intact(events)


async def test_an_event_that_cannot_be_stored_fails_its_whole_batch_and_nothing_commits(sessions, db_url):
    writer = AuditWriter(db_url)
    bad = {**fields(0), "actor": None}  # NOT NULL
    try:
        results = await asyncio.gather(
            writer.append("cn", **fields(1)), writer.append("cn", **bad), return_exceptions=True
        )
        assert all(isinstance(r, Exception) for r in results)
        assert await events_of(sessions) == []
        await writer.append("cn", **fields(2))  # the writer recovers for the next batch
    finally:
        await writer.close()
    events = await events_of(sessions)
    assert [e.target_id for e in events] == ["2"] and events[0].seq == 1


async def test_close_writes_what_is_queued(sessions, db_url):
    writer = AuditWriter(db_url)
    waiting = [asyncio.ensure_future(writer.append("cn", **fields(i))) for i in range(25)]
    await asyncio.sleep(0)  # queued, not necessarily written
    await writer.close()
    await asyncio.gather(*waiting)
    async with sessions() as session:
        assert (await session.exec(select(func.count()).select_from(AuditEvent))).one() == 25


async def test_on_sqlite_the_loop_never_waits_for_another_writers_lock(sqlite_template, tmp_path):
    """While another connection holds SQLite's write lock the batch goes to the writer's thread:
    the event loop keeps running, and the event commits once the lock is released. (SQLite in both
    passes: PostgreSQL locks per chain, covered above.)"""
    path = tmp_path / "own.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    writer = AuditWriter(url)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        appended = asyncio.ensure_future(writer.append("cn", **fields(1)))
        ticks = 0
        started = time.monotonic()
        while time.monotonic() - started < 0.3:
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks >= 10 and not appended.done()  # the loop ran; the event waits for the lock
        holder.execute("COMMIT")
        await asyncio.wait_for(appended, timeout=10)
    finally:
        holder.close()
        await writer.close()
    engine = make_async_engine(url)
    try:
        assert [e.target_id for e in await events_of(make_session_factory(engine))] == ["1"]
    finally:
        await engine.dispose()


async def test_on_sqlite_the_wal_is_checkpointed_and_restarted_between_batches(sqlite_template, tmp_path):
    """In-loop commits do not checkpoint; the writer does, between its batches, so that under a
    steady stream of calls the WAL is restarted instead of growing for as long as they last."""
    path = tmp_path / "own.db"
    shutil.copyfile(sqlite_template, path)
    writer = AuditWriter(f"sqlite:///{path}", checkpoint_interval=0)

    async def caller(n: int) -> None:
        for i in range(60):
            await writer.append("cn", **fields(n * 1000 + i))

    probe = sqlite3.connect(path)
    try:
        await asyncio.gather(*(caller(n) for n in range(8)))  # ~60 batches, one after the other
        # Asked while the writer is still open (closing the last connection checkpoints anyway).
        _, wal_frames, _ = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        events = probe.execute("select count(*) from audit_event").fetchone()[0]
    finally:
        probe.close()
        await writer.close()
    assert events == 480
    assert wal_frames < 50  # the frames since the last restart, not those of all ~60 batches
