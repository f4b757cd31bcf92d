"""Audit trail benchmark (issue 14): `ssc audit verify` against the bare chain walk.

    python bench/audit.py [--events 1000000] [--database-url postgresql://...] [--jobs N]

Writes N audit events over 300 tenant chains into a fresh database (a temporary SQLite file by
default) through the platform's own append path, then, each in a fresh child process (so the peak
RSS is the verification's own):
- `verify`: the whole of `ssc audit verify` (app/ops/compliance/verify.verify_database) with `--jobs`
  processes (default: one per CPU): read every event, recompute every hash, check every link and a
  signed checkpoint;
- `floor`: the bare chain walk over the same rows in one process: the same query (the events in
  written order, as verification's first pass reads them), fetched the same way, and one SHA-256
  per row chained on the previous one, nothing else (verification with one job cannot beat it);
  and the bare SHA-256 chain over the first 100,000 contents once they are in memory.
Then verification of a quarter of the events (one subtree) for the memory comparison. The last
line of output is one JSON object with `verify_events_per_s` and `floor_events_per_s`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.ops.compliance.checkpoints import Signer, sign_heads  # noqa: E402
from app.ops.compliance.verify import verify_database  # noqa: E402
from app.store import migrate  # noqa: E402
from app.store.audit import append_events  # noqa: E402
from app.store.audit_read import id_span  # noqa: E402
from app.store.audit_scan import Target, connect, written_rows  # noqa: E402
from app.store.db import driver_target, make_async_engine, make_session_factory, make_sync_engine  # noqa: E402
from bench.databases import DATABASE_URL_HELP, bench_database  # noqa: E402

SEED = bytes(32)  # a fixed signing key: the benchmark's checkpoint is not a secret
PROVINCES = ["cn/440000", "cn/110000", "cn/310000"]


def tenants() -> list[str]:
    """300 chains: 3 provinces, each with 33 cities of 2 districts."""
    found = []
    for province in PROVINCES:
        found.append(province)
        for c in range(1, 34):
            city = f"{province}/{province[3:5]}{c:02d}00"
            found += [city, f"{city}/{city[-6:-2]}01", f"{city}/{city[-6:-2]}02"]
    return found[:300]


async def write(url: str, events: int) -> None:
    engine = make_async_engine(url)
    sessions = make_session_factory(engine)
    chains = tenants()
    written = 0
    while written < events:
        batch = []
        for n in range(written, min(written + 10_000, events)):
            batch.append(
                (
                    chains[(n * 7919) % len(chains)],
                    {
                        "actor": f"key:{n % 977}" if n % 4 else "person:gz.admin",
                        "credential": f"key:{n % 977}" if n % 4 else f"token:{n % 31}",
                        "action": "card.read" if n % 4 else "grant.approve",
                        "target_type": "card" if n % 4 else "grant",
                        "target_id": str(n),
                        "decision": "allow" if n % 4 else None,
                        "reason": None,
                        "detail": {"id_number": "4401**********123X", "service": "info_inquiry", "n": n}
                        if n % 4
                        else {"after": {"state": "active", "version": 2}, "why": "粤人社函〔2026〕8号"},
                        "request_id": secrets.token_hex(8),
                    },
                )
            )
        async with sessions() as session, session.begin():
            await append_events(session, batch)
        written += len(batch)
    await sign_heads(sessions, Signer(SEED))
    await engine.dispose()


def child(url: str, mode: str, under: str | None, jobs: int) -> dict:
    started = time.perf_counter()
    if mode == "verify":
        found = verify_database(url, under=under, public_key=Signer(SEED).public_key, jobs=jobs)
        assert found.ok, (found.breaks, found.problems)
        events = found.events
    else:
        target = Target(*driver_target(url))
        raw = connect(target)
        engine = make_sync_engine(url)
        with engine.connect() as connection:
            span = id_span(connection)
        engine.dispose()
        events, prev, sha256, kept = 0, "0" * 64, hashlib.sha256, []
        for batch in written_rows(raw, target.dialect, under, span):
            for _tenant, _seq, _prev, _hash, content, _ref in batch:
                prev = sha256(prev.encode() + content).hexdigest()
            events += len(batch)
            if len(kept) < 100_000:
                kept.extend(row[4] for row in batch)
        raw.close()
    seconds = time.perf_counter() - started
    # The largest of this process and its own (verification's parts, with several jobs).
    rss_mb = max(
        resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    found = {"events": events, "seconds": seconds, "rss_mb": rss_mb / 1024}
    if mode == "floor":
        t0, prev = time.perf_counter(), "0" * 64
        for content in kept:
            prev = hashlib.sha256(prev.encode() + content).hexdigest()
        found["sha_in_memory_per_s"] = len(kept) / (time.perf_counter() - t0)
    return found


def run_child(url: str, mode: str, jobs: int, under: str | None = None) -> dict:
    args = [sys.executable, __file__, "--child", mode, "--database-url", url, "--jobs", str(jobs)]
    if under:
        args += ["--under", under]
    done = subprocess.run(args, capture_output=True, text=True, timeout=1800, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--database-url", help=DATABASE_URL_HELP)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=["verify", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--under", help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.database_url, args.child, args.under, args.jobs)))
        return
    with (
        tempfile.TemporaryDirectory(prefix="ssc-bench-") as tmp,
        bench_database(args.database_url, Path(tmp), "audit") as url,
    ):
        migrate.upgrade(url)
        t0 = time.perf_counter()
        asyncio.run(write(url, args.events))
        print(f"wrote {args.events:,} events in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        verify, floor = [], []
        for n in range(args.rounds):  # taking turns, so that both see the same machine
            verify.append(run_child(url, "verify", args.jobs))
            floor.append(run_child(url, "floor", 1))
            print(f"round {n + 1}: verify {verify[-1]}, floor {floor[-1]}", file=sys.stderr)
        part = run_child(url, "verify", args.jobs, PROVINCES[0])
    rate = sorted(r["events"] / r["seconds"] for r in verify)[len(verify) // 2]
    floor_rate = sorted(r["events"] / r["seconds"] for r in floor)[len(floor) // 2]
    whole_rss = sorted(r["rss_mb"] for r in verify)[len(verify) // 2]
    sha_rate = sorted(r["sha_in_memory_per_s"] for r in floor)[len(floor) // 2]
    print(
        f"verify ({args.jobs} jobs): {rate:,.0f} events/s (floor {floor_rate:,.0f}/s, "
        f"{rate / floor_rate:.2f} of it; SHA-256 chain in memory {sha_rate:,.0f}/s); "
        f"peak RSS {whole_rss:.0f} MB for {args.events:,} events, {part['rss_mb']:.0f} MB for "
        f"{part['events']:,}; machine {platform.machine()}, python {platform.python_version()}",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "events": args.events,
                "database": url.split(":", 1)[0],
                "verify_events_per_s": round(rate),
                "floor_events_per_s": round(floor_rate),
                "verify_to_floor": round(rate / floor_rate, 3),
                "verify_jobs": args.jobs,
                "sha_in_memory_events_per_s": round(sha_rate),
                "verify_rss_mb": round(whole_rss),
                "verify_subtree_events": part["events"],
                "verify_subtree_rss_mb": round(part["rss_mb"]),
            }
        )
    )


if __name__ == "__main__":
    main()
