"""Policy sync: the change log, the tailer, and a revocation seen by a second real process."""

import asyncio
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import event
from sqlmodel import select

from app.authz.policy_state import BusinessPolicy
from app.authz.sync import PolicyTailer
from app.store import policy
from app.store.db import WriteSession, make_async_engine, make_session_factory
from app.store.policy import ProjectedLine, changes_after
from app.store.tables import PolicyChange

ROOT = Path(__file__).resolve().parents[2]
TH = "cn/440000/440100/440106"
RULE = (
    "outlet:gz-th-wushan",
    "cn/440000/440100",
    "password_change",
    "allow",
    "2026-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "42",
)
REQUEST = ["outlet:gz-th-wushan", TH, TH, "password_change", "2026-06-01T00:00:00Z"]
PROPAGATION_LIMIT_S = 5


async def _add(sessions, rule=RULE, source_id="42"):
    async with sessions() as session, session.begin():
        await policy.add_lines(session, [ProjectedLine("p", rule, "grant", source_id)], by="test")


async def test_tailer_loads_then_applies_changes_in_order(sessions, db_url):
    await _add(sessions)
    state = BusinessPolicy()
    tailer = PolicyTailer(sessions, load=state.load, apply=state.apply, database_url=db_url)
    await tailer.load()
    assert state.enforcer.enforce(*REQUEST)
    assert await tailer.catch_up() == 0  # the snapshot already reflects the log
    async with sessions() as session, session.begin():
        assert await policy.remove_source_lines(session, source="grant", source_ids=["42"], by="test") == 1
    assert await tailer.catch_up() == 1
    assert not state.enforcer.enforce(*REQUEST)


async def test_revocation_reaches_another_process(sessions, db_url):
    await _add(sessions)
    worker = subprocess.Popen(
        [sys.executable, str(ROOT / "tests/authz/policy_worker.py"), db_url, *REQUEST],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert worker.stdout.readline().split() == ["ready", "True"], worker.stderr.read()
        async with sessions() as session, session.begin():
            await policy.remove_source_lines(session, source="grant", source_ids=["42"], by="test")
        committed = time.time()
        line = await asyncio.wait_for(asyncio.to_thread(worker.stdout.readline), PROPAGATION_LIMIT_S)
        word, decision, seen = line.split()
        assert (word, decision) == ("flipped", "False")
        assert float(seen) - committed < PROPAGATION_LIMIT_S
    finally:
        worker.kill()
        worker.wait(timeout=10)


async def test_concurrent_writers_never_leave_a_gap_behind_the_tailer(pg_url):
    """Writers that commit out of id order would make a naive `id > last` tailer skip rows; the
    advisory lock on appends makes ids visible in order, so the tailer sees every one exactly once."""
    engine = make_async_engine(pg_url)
    sessions = make_session_factory(engine)
    seen: list[int] = []
    last = 0
    writers_done = asyncio.Event()

    async def writer(n: int) -> None:
        rng = random.Random(n)
        for i in range(10):
            async with sessions() as session, session.begin():
                rule = (f"outlet:w{n}", "cn", "info_inquiry", "allow", "a", "z", f"{n}-{i}")
                await policy.add_lines(session, [ProjectedLine("p", rule, "grant", f"{n}-{i}")], by="test")
                await asyncio.sleep(rng.random() * 0.01)  # commit late, after others took ids

    async def tailer() -> None:
        nonlocal last
        while True:
            async with sessions() as session:
                for change in await changes_after(session, last):
                    seen.append(change.id)
                    last = change.id
            if writers_done.is_set():
                async with sessions() as session:
                    if not await changes_after(session, last):
                        return
            await asyncio.sleep(0)

    reader = asyncio.create_task(tailer())
    await asyncio.gather(*(writer(n) for n in range(8)))
    writers_done.set()
    await asyncio.wait_for(reader, 30)
    async with sessions() as session:
        all_ids = (await session.exec(select(PolicyChange.id).order_by(PolicyChange.id))).all()
    await engine.dispose()
    assert seen == list(all_ids) and len(seen) == 80


def _rule(gid: str) -> tuple[str, ...]:
    return (*RULE[:-1], gid)


async def test_own_changes_are_applied_from_memory_in_log_order(sessions, db_url, monkeypatch):
    """What this worker's transactions commit is applied without reading it back, and the other
    workers' changes around it are read from the log and applied in between, in id order. A
    transaction rolled back in between (a gap in the ids on PostgreSQL) is stepped over."""
    state = BusinessPolicy()
    applied: list[int] = []

    def apply(change) -> None:
        applied.append(change.id)
        state.apply(change)

    tailer = PolicyTailer(sessions, load=state.load, apply=apply, database_url=db_url)
    await tailer.load()
    other_worker = make_async_engine(db_url)
    others = make_session_factory(other_worker)
    lines_before = state.enforcer.policy_count
    read: list[tuple[int, int | None]] = []
    original = policy.changes_after

    async def counted(session, last_id, limit=10_000, before=None):
        found = await original(session, last_id, limit, before=before)
        read.extend((c.id, before) for c in found)
        return found

    monkeypatch.setattr("app.authz.sync.changes_after", counted)
    await _add(others, _rule("1"), "1")  # another worker's change, before ours
    await _add(sessions, _rule("2"), "2")
    async with sessions() as session, session.begin():  # rolled back: never kept
        await policy.add_lines(session, [ProjectedLine("p", _rule("x"), "grant", "x")], by="test")
        await session.rollback()
    await _add(sessions, _rule("3"), "3")
    await _add(others, _rule("4"), "4")  # another worker's change, after ours
    async with sessions() as session:
        logged = (await session.exec(select(PolicyChange.id, PolicyChange.rule))).all()
    ours = [i for i, rule in logged if rule.endswith('"2"]') or rule.endswith('"3"]')]
    assert await tailer.catch_up() == 4
    await other_worker.dispose()
    assert applied == sorted(applied) and len(applied) == 4 and set(ours) <= set(applied)
    assert len(ours) == 2 and not {i for i, _ in read} & set(ours)  # ours were not read back
    assert {i for i, _ in read} == set(applied) - set(ours)
    assert tailer.revision == applied[-1]
    assert state.enforcer.policy_count == lines_before + 4 and state.enforcer.enforce(*REQUEST)


async def test_the_tailer_reads_only_up_to_a_segment_of_ours_still_committing(sessions, db_url):
    """Between the database's commit and the after-commit hook, the log already shows a worker's
    own entries: the tailer stops before them (their request applies them from memory) and reads
    on once the transaction has ended."""
    state = BusinessPolicy()
    tailer = PolicyTailer(sessions, load=state.load, apply=state.apply, database_url=db_url)
    await tailer.load()
    kept = policy.keep_committed(sessions.kw["bind"])
    seen_while_committing: list[int | None] = []

    def during_commit(session) -> None:
        seen_while_committing.append(kept.held_back(0))

    event.listen(WriteSession, "after_commit", during_commit)
    try:
        await _add(sessions, _rule("1"), "1")
    finally:
        event.remove(WriteSession, "after_commit", during_commit)
    async with sessions() as session:
        (ours,) = (await session.exec(select(PolicyChange.id))).all()
    assert seen_while_committing == [ours] and kept.held_back(0) is None  # settled with the transaction
    async with sessions() as session, session.begin():  # rolled back: nothing left committing
        await policy.add_lines(session, [ProjectedLine("p", _rule("x"), "grant", "x")], by="test")
        await session.rollback()
    assert kept.held_back(0) is None

    other_worker = make_async_engine(db_url)
    await _add(make_session_factory(other_worker), _rule("2"), "2")
    await _add(make_session_factory(other_worker), _rule("3"), "3")
    await other_worker.dispose()
    async with sessions() as session:
        second, third = (await session.exec(select(PolicyChange.id).where(PolicyChange.id > ours))).all()
    kept.committing(third)  # as if the third were ours, committed, its hook still to run
    assert await tailer.catch_up() == 2 and tailer.revision == second  # ours from memory, then the log
    kept.settled(third)
    assert await tailer.catch_up() == 1 and tailer.revision == third
    kept.committing(third + 1)
    kept._committing[third + 1] -= kept.COMMITTING_S + 1  # a hook lost: no longer waited for
    assert kept.held_back(third) is None
