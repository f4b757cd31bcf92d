"""Policy snapshots (app/authz/snapshot.py): a restarted worker reads its policy from the snapshot and
the change log after it, and holds exactly what a load from the database gives; a snapshot it may
not trust — altered, under another key, of other code, or of a change log that is no longer the one
it saw — is never used."""

from __future__ import annotations

import asyncio
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlmodel import delete, select

from app.authz import snapshot as snapshot_module
from app.authz.policy_state import BusinessPolicy
from app.authz.snapshot import PolicySnapshots
from app.authz.sync import PolicyTailer
from app.store import policy
from app.store.db import make_async_engine, make_session_factory
from app.store.policy import ProjectedLine
from app.store.tables import PolicyChange, PolicyLine

KEY = b"k" * 32
DOMAINS = ("cn/440000", "cn/440000/440100", "cn/440000/440100/440106", "cn/440000/440300")
SERVICES = ("activation", "info_inquiry", "password_change", "password_reset")


def _lines(rng: random.Random, start: int, count: int) -> list[ProjectedLine]:
    """A mix of every kind of line the business policy holds: grants and blocks (p), outlets'
    kinds (g), ceilings (c) and suspension marks (s)."""
    lines = []
    for n in range(start, start + count):
        outlet, dom, svc = f"outlet:o{n % 40}", rng.choice(DOMAINS), rng.choice(SERVICES)
        roll = rng.random()
        if roll < 0.6:
            eft = "deny" if roll < 0.05 else "allow"
            rule = (outlet, dom, svc, eft, "2026-01-01T00:00:00Z", "9999-12-31T23:59:59Z", str(n))
            lines.append(ProjectedLine("p", rule, "grant", str(n)))
        elif roll < 0.8:
            lines.append(ProjectedLine("g", (outlet, f"kind:k{n % 3}", dom), "outlet", str(n)))
        elif roll < 0.9:
            lines.append(
                ProjectedLine("c", (dom, f"k{n % 3}", " ".join(SERVICES[: n % 4 + 1])), "ceiling", str(n))
            )
        else:
            lines.append(ProjectedLine("s", (outlet, dom, svc, "SUSPENDED", str(n)), "suspension", str(n)))
    return lines


async def _write(sessions, lines: list[ProjectedLine]) -> None:
    async with sessions() as session, session.begin():
        await policy.add_lines(session, lines, by="test")


async def _remove(sessions, source: str, ids: list[str]) -> None:
    async with sessions() as session, session.begin():
        await policy.remove_source_lines(session, source=source, source_ids=ids, by="test")


def _held(state: BusinessPolicy) -> tuple:
    """Everything a policy holds, comparable."""
    suspensions = {k: sorted((m.dom, m.why, m.gid) for m in v) for k, v in state.suspensions.items()}
    return set(state.enforcer.lines()), state.ceilings, suspensions, state.line_count


def _worker(sessions, db_url, directory, key=KEY) -> tuple[BusinessPolicy, PolicyTailer, PolicySnapshots]:
    state = BusinessPolicy()
    snapshots = PolicySnapshots(directory, db_url, key, state)
    tailer = PolicyTailer(
        sessions, load=state.load, apply=state.apply, database_url=db_url, snapshots=snapshots
    )
    return state, tailer, snapshots


async def _loaded_from_database(sessions, db_url) -> BusinessPolicy:
    state = BusinessPolicy()
    await PolicyTailer(sessions, load=state.load, apply=state.apply, database_url=db_url).load()
    return state


async def test_a_restart_reads_the_snapshot_and_replays_the_log_after_it(sessions, db_url, tmp_path):
    rng = random.Random(7)
    await _write(sessions, _lines(rng, 0, 300))
    _, tailer, snapshots = _worker(sessions, db_url, tmp_path)
    assert await tailer.load() > 0  # no snapshot yet: every line read from the database
    assert snapshots.path.exists() and snapshots.position == tailer.last_id

    await _write(sessions, _lines(rng, 300, 100))  # committed after the snapshot
    await _remove(sessions, "grant", [str(n) for n in range(0, 300, 3)])
    restarted, tailer, _ = _worker(sessions, db_url, tmp_path)
    assert await tailer.load() == 0  # not one line read from the database
    assert _held(restarted) == _held(await _loaded_from_database(sessions, db_url))
    assert tailer.last_id == (await _position(sessions))


async def _position(sessions) -> int:
    async with sessions() as session:
        return await policy.last_change_id(session)


async def test_a_stop_writes_a_snapshot_of_where_the_worker_stands(sessions, db_url, tmp_path):
    rng = random.Random(8)
    await _write(sessions, _lines(rng, 0, 50))
    _, tailer, snapshots = _worker(sessions, db_url, tmp_path)
    await tailer.load()
    await _write(sessions, _lines(rng, 50, 50))
    await tailer.catch_up()
    await tailer.stop()
    assert snapshots.position == tailer.last_id == await _position(sessions)
    restarted, tailer, _ = _worker(sessions, db_url, tmp_path)
    assert await tailer.load() == 0
    assert _held(restarted) == _held(await _loaded_from_database(sessions, db_url))


async def test_a_long_replay_writes_a_fresh_snapshot(sessions, db_url, tmp_path, monkeypatch):
    rng = random.Random(9)
    await _write(sessions, _lines(rng, 0, 20))
    _, tailer, _ = _worker(sessions, db_url, tmp_path)
    await tailer.load()
    await _write(sessions, _lines(rng, 20, 30))
    monkeypatch.setattr("app.authz.sync.SNAPSHOT_REFRESH", 30)
    _, tailer, snapshots = _worker(sessions, db_url, tmp_path)
    await tailer.load()
    assert snapshots.position == await _position(sessions)  # rewritten after replaying 30 changes


def _altered(path) -> None:
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 1
    path.write_bytes(bytes(blob))


@pytest.mark.parametrize(
    "distrust",
    ["altered", "another key", "other code", "another log at the same address", "no longer there"],
)
async def test_a_snapshot_it_may_not_trust_is_never_used(sessions, db_url, tmp_path, monkeypatch, distrust):
    rng = random.Random(10)
    await _write(sessions, _lines(rng, 0, 80))
    _, tailer, snapshots = _worker(sessions, db_url, tmp_path)
    await tailer.load()
    key = KEY
    if distrust == "altered":
        _altered(snapshots.path)
    elif distrust == "another key":
        key = b"x" * 32
    elif distrust == "other code":
        monkeypatch.setattr(snapshot_module, "code_fingerprint", lambda: "0" * 64)
    elif distrust == "another log at the same address":
        await _rewrite_log(sessions)
    else:
        await _rewrite_log(sessions, keep_below=1)
    restarted, tailer, _ = _worker(sessions, db_url, tmp_path, key)
    assert await tailer.load() > 0 or distrust == "no longer there"  # read from the database
    assert _held(restarted) == _held(await _loaded_from_database(sessions, db_url))


async def _rewrite_log(sessions, keep_below: int | None = None) -> None:
    """Change the log under a snapshot as a restore of another backup would: its entries from
    `keep_below` on gone (the policy lines with them), or each entry's time another."""
    async with sessions() as session, session.begin():
        if keep_below is not None:
            await session.exec(delete(PolicyChange).where(PolicyChange.id >= keep_below))
            await session.exec(delete(PolicyLine))
            return
        for entry in (await session.exec(select(PolicyChange))).all():
            entry.at += timedelta(seconds=1)


def _save_repeatedly(snapshots: PolicySnapshots, db_url: str, position: int, times: int) -> None:
    """One worker writing its snapshot again and again, in a thread with an event loop and
    connections of its own (as another process would)."""

    async def run() -> None:
        engine = make_async_engine(db_url)
        try:
            own = make_session_factory(engine)
            # Every time written, as if it had never written one and found none on disk.
            snapshots._position_on_disk = lambda: None
            for _ in range(times):
                snapshots.position = 0
                assert await snapshots.save(own, position)
        finally:
            await engine.dispose()

    asyncio.run(run())


async def test_workers_writing_the_same_snapshot_together_leave_one_whole(sessions, db_url, tmp_path, caplog):
    """Two workers of one machine stopping together write the same file at once: a reader then finds
    one of the two snapshots whole (never a mix, never a file it distrusts), and no temporary
    file is left behind."""
    rng = random.Random(11)
    shared = tmp_path / "snapshots"
    await _write(sessions, _lines(rng, 0, 3000))
    first, first_at = await _loaded_from_database(sessions, db_url), await _position(sessions)
    await _write(sessions, _lines(rng, 3000, 3000))
    second, second_at = await _loaded_from_database(sessions, db_url), await _position(sessions)
    with ThreadPoolExecutor(2) as pool:
        writers = [
            pool.submit(_save_repeatedly, PolicySnapshots(shared, db_url, KEY, state), db_url, position, 30)
            for state, position in ((first, first_at), (second, second_at))
        ]
        reads = 0
        while not all(writer.done() for writer in writers) or reads == 0:
            reader = BusinessPolicy()
            position = await PolicySnapshots(shared, db_url, KEY, reader).restore(sessions)
            if position is not None:  # None only before the first file is in place
                reads += 1
                assert _held(reader) == _held({first_at: first, second_at: second}[position])
        for writer in writers:
            writer.result()  # a writer's failure, raised here
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    assert [p.name for p in shared.iterdir()] == [PolicySnapshots(shared, db_url, KEY, first).path.name]
