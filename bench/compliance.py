"""Compliance queries benchmark (issue 14): `whoCan` at a past time and the permission matrix download.

    python bench/compliance.py [--outlets 100000] [--rounds 10] [--samples 21]

Builds a fresh SQLite database: the demo tree, N synthetic outlets (`ssc demo generate`), and a
policy history of `rounds` × N grant lines, one per outlet per round, each round's lines ended by
the next (so N outlets and about 1,000,000 history lines with the defaults), written straight into
`policy_line` / `policy_line_ended` as the grant use cases leave them. Then:
- `whoCan` (app/ops/compliance/history.who_can_do, first page of 50) at random past instants, as a
  province auditor: p50 and p95, against the floor of reading the two sets the answer is made of
  (the subjects of the round's grant lines and of the province's open outlets at that instant);
- the permission matrix of the province as CSV over HTTP from a uvicorn server on 127.0.0.1
  (GET /reports/permission-matrix), to the last byte, three times.
The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.authz.projection import policy_time  # noqa: E402
from app.ops.auth import authenticate  # noqa: E402
from app.ops.compliance.history import who_can_do  # noqa: E402
from app.ops.demo.generate import generate  # noqa: E402
from app.ops.principals.credentials import create_principal_with_token  # noqa: E402
from app.ops.tenants.apply import apply_tenant_files  # noqa: E402
from app.settings import Settings, get_settings, resolve_keys  # noqa: E402
from app.store import migrate  # noqa: E402
from app.store.crypto import FieldCipher  # noqa: E402
from app.store.db import make_async_engine, make_session_factory, make_sync_engine  # noqa: E402
from app.store.policy_history import subjects_at  # noqa: E402
from app.store.queries import in_subtree  # noqa: E402
from app.web import create_app  # noqa: E402

PROVINCE = "cn/440000"
SERVICES = ("password_reset", "password_change", "info_inquiry")
START = datetime(2025, 1, 1, tzinfo=UTC)
ROUND = timedelta(days=30)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def write_history(url: str, rounds: int) -> int:
    """One grant line per outlet per round; round k's lines end when round k+1's begin."""
    engine = make_sync_engine(url)
    with engine.begin() as connection:
        raw = connection.connection.driver_connection
        raw.execute("UPDATE policy_line SET added_at = ? WHERE ptype = 'g'", (stamp(START - ROUND),))
        outlets = [row[0] for row in raw.execute("SELECT v0 FROM policy_line WHERE ptype = 'g'")]
        gid = 1_000_000
        total = 0
        for k in range(rounds):
            added, removed = START + k * ROUND, START + (k + 1) * ROUND
            service = SERVICES[k % len(SERVICES)]
            rows = []
            for outlet in outlets:
                gid += 1
                rows.append(
                    (
                        "p",
                        outlet,
                        PROVINCE,
                        service,
                        "allow",
                        "2000-01-01T00:00:00Z",
                        "9999-12-31T23:59:59Z",
                        str(gid),
                        "grant",
                        str(gid),
                        stamp(added),
                        "bench",
                    )
                )
            if k < rounds - 1:
                raw.executemany(
                    "INSERT INTO policy_line_ended (ptype, v0, v1, v2, v3, v4, v5, v6, source, source_id,"
                    " added_at, added_by, removed_at, removed_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,'bench')",
                    [(*r, stamp(removed)) for r in rows],
                )
            else:
                raw.executemany(
                    "INSERT INTO policy_line (ptype, v0, v1, v2, v3, v4, v5, v6, source, source_id, added_at,"
                    " added_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    rows,
                )
            total += len(rows)
    engine.dispose()
    return total


async def prepare(url: str, outlets: int) -> str:
    engine = make_async_engine(url)
    sessions = make_session_factory(engine)
    await apply_tenant_files(sessions, ROOT / "tenants")
    cipher = FieldCipher(*resolve_keys(get_settings()))
    await generate(sessions, cipher, cards=0, outlets=outlets, seed=1)
    issued = await create_principal_with_token(sessions, tenant_path=PROVINCE, role="auditor")
    await engine.dispose()
    return issued.token


async def measure_who_can(url: str, token: str, rounds: int, samples: int) -> dict:
    engine = make_async_engine(url)
    sessions = make_session_factory(engine)
    async with sessions() as session:
        actor = await authenticate(session, token)
    rng = random.Random(7)
    times, floor, found = [], [], []
    for _ in range(samples):
        at = START + timedelta(seconds=rng.uniform(0, rounds * ROUND.total_seconds()))
        service = SERVICES[int((at - START) / ROUND) % len(SERVICES)]  # the round's own grants
        t0 = time.perf_counter()
        answer = await who_can_do(sessions, actor, PROVINCE, service, at, limit=51)
        times.append(time.perf_counter() - t0)
        found.append(answer.total)
        t0 = time.perf_counter()
        async with sessions() as session:
            await subjects_at(
                session, at, lambda t, s=service: [t.c.ptype == "p", t.c.v2 == s, t.c.v1 == PROVINCE]
            )
            await subjects_at(session, at, lambda t: [t.c.ptype == "g", in_subtree(t.c.v2, PROVINCE)])
        floor.append(time.perf_counter() - t0)
    await engine.dispose()
    return {
        "who_can_p50_ms": statistics.median(times) * 1000,
        "who_can_p95_ms": sorted(times)[int(len(times) * 0.95)] * 1000,
        "who_can_floor_p50_ms": statistics.median(floor) * 1000,
        "who_can_outlets_median": statistics.median(found),
        "at_example": policy_time(START + ROUND / 2),
    }


def measure_matrix(url: str, token: str, runs: int = 3) -> dict:
    app = create_app(Settings(database_url=url, audit_checkpoint_seconds=0))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    seconds, size, rows = [], 0, 0
    try:
        for _ in range(runs):
            t0 = time.perf_counter()
            with httpx.stream(
                "GET",
                f"http://127.0.0.1:{port}/reports/permission-matrix",
                params={"tenant": PROVINCE, "format": "csv"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=300,
            ) as response:
                response.raise_for_status()
                size = rows = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    rows += chunk.count(b"\n")  # not "\r\n": a chunk may end between the two
            seconds.append(time.perf_counter() - t0)
    finally:
        server.should_exit = True
        thread.join(timeout=60)
    return {
        "matrix_csv_seconds_median": statistics.median(seconds),
        "matrix_csv_rows": rows - 1,
        "matrix_csv_bytes": size,
        "matrix_csv_runs": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outlets", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--samples", type=int, default=21)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ssc-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'compliance.db'}"
        migrate.upgrade(url)
        t0 = time.perf_counter()
        token = asyncio.run(prepare(url, args.outlets))
        lines = write_history(url, args.rounds)
        print(
            f"built {args.outlets:,} outlets and {lines:,} grant lines in {time.perf_counter() - t0:.1f} s",
            file=sys.stderr,
        )
        who = asyncio.run(measure_who_can(url, token, args.rounds, args.samples))
        print(f"whoCan: {who}", file=sys.stderr)
        matrix = measure_matrix(url, token)
        print(f"matrix: {matrix}", file=sys.stderr)
    result = {
        "machine": f"{platform.node()} {platform.machine()} {platform.python_version()}",
        "date": datetime.now(UTC).date().isoformat(),
        "outlets": args.outlets,
        "history_lines": lines + args.outlets,
        **who,
        **matrix,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
