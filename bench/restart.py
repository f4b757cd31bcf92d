"""A killed worker, started again: how soon does it serve, and with how much memory? (issue 16: ≤ 5 s
with 1,000,000 policy lines, ≤ 500 MB)

    python bench/restart.py [--lines 1000000] [--changes 10000] [--rounds 3]
                            [--database-url postgresql://postgres@127.0.0.1:5432/test]

Builds bench/authz.py's national-shaped policy of N lines in a fresh database, then runs one
`ssc serve` worker (tests/procsrv.py) on it: a cold start (every line read from the database, then a
policy snapshot written: app/authz/snapshot.py), --changes changes committed by another process
while it serves (grants to outlets, each one policy line and one log entry), then rounds of SIGKILL
and start again — each round once with snapshots (the snapshot plus the log after it) and once
without (SSC_POLICY_SNAPSHOT_DIR empty: every line from the database, the baseline), in turns. A
start is timed from the process's launch to /readyz answering 200 (the policy loaded), and the
restarted worker must then answer a GraphQL query; its peak RSS (VmHWM) is read from /proc. The last
line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.authz import build_database, synthetic_policy  # noqa: E402
from bench.databases import DATABASE_URL_HELP, backend, bench_database  # noqa: E402
from tests.procsrv import ServeProcess  # noqa: E402

START_TIMEOUT_S = 120


async def commit_changes(url: str, count: int, start: int) -> None:
    """`count` grants to outlets, each its own line and log entry, committed 1,000 at a time."""
    from app.store import policy
    from app.store.db import make_async_engine, make_session_factory
    from app.store.policy import ProjectedLine

    engine = make_async_engine(url)
    sessions = make_session_factory(engine)
    for first in range(start, start + count, 1_000):
        lines = [
            ProjectedLine(
                "p",
                (
                    f"outlet:o{n}",
                    "cn/440000",
                    "info_inquiry",
                    "allow",
                    "2026-01-01T00:00:00Z",
                    "9999-12-31T23:59:59Z",
                    f"r{n}",
                ),
                "grant",
                f"r{n}",
            )
            for n in range(first, min(first + 1_000, start + count))
        ]
        async with sessions() as session, session.begin():
            await policy.add_lines(session, lines, by="bench")
    await engine.dispose()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("no VmHWM in /proc")


def answers(base: str) -> bool:
    body = httpx.post(f"{base}/graphql", json={"query": "{ __typename }"}, timeout=10).json()
    return body.get("data") == {"__typename": "Query"}


def timed_start(server: ServeProcess) -> tuple[float, float]:
    """(seconds from launch to ready, peak RSS in MB once ready)."""
    started = time.monotonic()
    server.start(wait=False)
    server.wait_ready(started + START_TIMEOUT_S)
    took = time.monotonic() - started
    if not answers(server.base):
        raise SystemExit("the restarted worker does not answer")
    return took, peak_rss_mb(server.process.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=10_000, help="committed after the cold start")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", help=DATABASE_URL_HELP)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="ssc-restart-") as tmp,
        bench_database(args.database_url, Path(tmp), "restart") as url,
    ):
        workdir = Path(tmp)
        t0 = time.perf_counter()
        rows, _ = synthetic_policy(args.lines)
        build_database(url, rows)
        del rows
        asyncio.run(commit_changes(url, 1, 0))  # the log's first entry: what a snapshot anchors to
        print(f"setup {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        snapshots = str(workdir / "snapshots")
        with_snapshots = ServeProcess(url, workdir / "keys.env", policy_snapshot_dir=snapshots)
        without = ServeProcess(url, workdir / "keys.env", policy_snapshot_dir="")
        cold, cold_rss = timed_start(with_snapshots)
        print(
            f"cold start (every line, then the snapshot written): {cold:.2f} s, {cold_rss:.0f} MB",
            file=sys.stderr,
        )
        asyncio.run(commit_changes(url, args.changes, 1))
        with_snapshots.kill()
        starts: dict[str, list[tuple[float, float]]] = {"snapshot": [], "database": []}
        try:
            for round_ in range(args.rounds):
                for name, server in (("snapshot", with_snapshots), ("database", without)):
                    starts[name].append(timed_start(server))
                    server.kill()  # SIGKILL: no stop, no snapshot written at exit
                    took, rss = starts[name][-1]
                    print(f"round {round_ + 1}, from the {name}: {took:.2f} s, {rss:.0f} MB", file=sys.stderr)
        finally:
            with_snapshots.stop()
            without.stop()
        database = backend(url)
    snapshot_s = statistics.median(s for s, _ in starts["snapshot"])
    database_s = statistics.median(s for s, _ in starts["database"])
    print(
        json.dumps(
            {
                "database": database,
                "lines": args.lines,
                "changes_replayed": args.changes,
                "cold_start_s": round(cold, 2),
                "restart_from_snapshot_s": round(snapshot_s, 2),
                "restart_from_database_s": round(database_s, 2),
                "speedup": round(database_s / snapshot_s, 2),
                "rss_mb_snapshot": round(max(r for _, r in starts["snapshot"])),
                "rss_mb_database": round(max(r for _, r in starts["database"])),
                "rounds": args.rounds,
            }
        )
    )


if __name__ == "__main__":
    main()
