"""Authorization engine benchmark (issue 3): load, check latency, Casbin ratio, propagation.

    python bench/authz.py --lines 1000000 [--database-url postgresql://postgres@127.0.0.1:5432/test]

Builds a synthetic national-shaped business policy of N lines in a database (31 provinces, their
prefectures and counties, outlets of every kind, grants per outlet and per kind, blocks, expired
and future windows), then in one run measures:
- in a fresh child process: load time from the database and peak RSS, then median and p99 check
  latency over a mix of allow, deny and no-match requests with domains at every level;
- stock `casbin.Enforcer` (set up at its best) on the same kind of requests over a 10k-line policy
  (read from a SQLite file whatever --database-url says: it measures the engines, not the database),
  the engine on the same requests, their median ratio and the count of disagreements;
- the delay from a revocation committed here to its enforcement in the child (median of rounds).
The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app.authz.model import load_model  # noqa: E402
from app.authz.policy_state import POLICIES_DIR, BusinessPolicy  # noqa: E402
from app.authz.sync import PolicyTailer  # noqa: E402
from app.domain.catalogue import DEFAULT_CEILING, OutletKind  # noqa: E402
from app.domain.regions import PROVINCE_PREFIXES  # noqa: E402
from app.store import migrate, policy  # noqa: E402
from app.store.db import make_async_engine, make_session_factory  # noqa: E402
from bench.databases import DATABASE_URL_HELP, backend, bench_database  # noqa: E402

NOW = "2026-06-01T00:00:00Z"
END = "9999-12-31T23:59:59Z"
KINDS = [k.value for k in OutletKind]
SERVICES = {k.value: sorted(s.value for s in DEFAULT_CEILING[k]) for k in OutletKind}
ALL_SERVICES = sorted({s for v in SERVICES.values() for s in v})
CASBIN_TIME_CAP_S = 90
CHECKS = 200_000
ROUNDS = 5


def tenant_tree() -> tuple[list[str], list[str], list[str]]:
    """31 provinces x 11 prefectures x 9 counties: about the real 333 / 2,844 shape."""
    provinces = [f"cn/{p}0000" for p in sorted(PROVINCE_PREFIXES)[:31]]
    cities = [f"{p}/{p[3:5]}{c:02d}00" for p in provinces for c in range(1, 12)]
    counties = [f"{c}/{c.rsplit('/', 1)[1][:4]}{n:02d}" for c in cities for n in range(1, 10)]
    return provinces, cities, counties


def ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def synthetic_policy(n_lines: int, seed: int = 1):
    """Rows (ptype, v0..v6, source, source_id) and the facts requests are drawn from."""
    rng = random.Random(seed)
    provinces, cities, counties = tenant_tree()
    n_outlets = max(10, n_lines // 5)
    outlets = []
    rows = []
    for i in range(n_outlets):
        tenant = rng.choice(counties) if rng.random() < 0.9 else rng.choice(cities)
        kind = rng.choice(KINDS)
        outlets.append((f"outlet:o{i}", kind, tenant))
        rows.append(("g", f"outlet:o{i}", f"kind:{kind}", tenant, None, None, None, None, "outlet", f"o{i}"))
    grants, blocked = [], []
    gid = 0
    n_kind = min(n_lines // 20, len(cities) * 4)
    for _ in range(n_kind):
        dom = rng.choice(cities + provinces)
        kind = rng.choice(KINDS)
        gid += 1
        rows.append(
            (
                "p",
                f"kind:{kind}",
                dom,
                rng.choice(SERVICES[kind]),
                "allow",
                "2025-01-01T00:00:00Z",
                END,
                str(gid),
                "grant",
                str(gid),
            )
        )
    while len(rows) < n_lines:
        sub, kind, tenant = rng.choice(outlets)
        chain = ancestors(tenant)[1:]  # never the national root
        dom = rng.choice(chain)
        svc = rng.choice(SERVICES[kind])
        gid += 1
        roll = rng.random()
        if roll < 0.01:
            eft, nbf, exp = "deny", "2025-01-01T00:00:00Z", END
            blocked.append((sub, tenant, dom, svc))
        elif roll < 0.11:
            eft, nbf, exp = "allow", "2024-01-01T00:00:00Z", "2025-12-31T00:00:00Z"  # expired
        elif roll < 0.16:
            eft, nbf, exp = "allow", "2027-01-01T00:00:00Z", END  # not yet valid
        else:
            eft, nbf, exp = "allow", "2025-06-01T00:00:00Z", rng.choice([END, "2030-01-01T00:00:00Z"])
            grants.append((sub, tenant, dom, svc))
        rows.append(
            ("p", sub, dom, svc, eft, nbf, exp, str(gid), "grant" if eft == "allow" else "block", str(gid))
        )
    all_domains = ["cn", *provinces, *cities, *counties]
    return rows[:n_lines], {
        "outlets": outlets,
        "grants": grants,
        "blocked": blocked,
        "domains": all_domains,
        "counties": counties,
    }


def requests(facts, count: int, seed: int = 2) -> list[tuple[str, ...]]:
    """40% allow-shaped (a live grant, a card under its domain), 20% deny-shaped (a blocked outlet),
    40% no-match (random outlet, service and card domain at any level)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.4 and facts["grants"]:
            sub, tenant, dom, svc = rng.choice(facts["grants"])
            card = rng.choice([tenant, dom])
            out.append((sub, tenant, card, svc, NOW))
        elif roll < 0.6 and facts["blocked"]:
            sub, tenant, dom, svc = rng.choice(facts["blocked"])
            out.append((sub, tenant, tenant, svc, NOW))
        else:
            sub, _, tenant = rng.choice(facts["outlets"])
            out.append((sub, tenant, rng.choice(facts["domains"]), rng.choice(ALL_SERVICES), NOW))
    return out


COLUMNS = "ptype, v0, v1, v2, v3, v4, v5, v6, source, source_id"


def build_database(url: str, rows) -> str:
    """Migrate the empty database at `url` and write the lines straight into `policy_line`."""
    migrate.upgrade(url)
    added_at = datetime.now(UTC)
    if backend(url) == "sqlite":
        # As SQLAlchemy's DateTime writes it on SQLite: naive UTC text.
        added = added_at.replace(tzinfo=None).isoformat(" ")
        with sqlite3.connect(make_url(url).database) as db:
            db.executemany(
                f"insert into policy_line ({COLUMNS}, added_at) values (?,?,?,?,?,?,?,?,?,?,?)",
                [(*row, added) for row in rows],
            )
    else:
        with (
            psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(False)) as db,
            db.cursor().copy(f"copy policy_line ({COLUMNS}, added_at) from stdin") as copy,
        ):
            for row in rows:
                copy.write_row((*row, added_at))
    return url


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def time_checks(enforce, reqs) -> list[float]:
    """Per-check latency in microseconds."""
    clock = time.perf_counter_ns
    out = []
    for r in reqs:
        t0 = clock()
        enforce(*r)
        out.append((clock() - t0) / 1000)
    return out


# --- the child: load, check, then watch for revocations -----------------------------------------


async def child(url: str, n_lines: int) -> None:
    engine = make_async_engine(url)
    state = BusinessPolicy()
    tailer = PolicyTailer(make_session_factory(engine), load=state.load, apply=state.apply, database_url=url)
    t0 = time.perf_counter()
    await tailer.load()
    load_s = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    _, facts = synthetic_policy(n_lines)
    reqs = requests(facts, CHECKS)
    time_checks(state.enforcer.enforce, reqs[:5000])  # warm up
    lat = sorted(time_checks(state.enforcer.enforce, reqs))
    print(
        json.dumps(
            {
                "load_s": load_s,
                "rss_mb": rss_mb,
                "p50": statistics.median(lat),
                "p99": percentile(lat, 0.99),
                "allowed": sum(state.enforcer.enforce(*r) for r in reqs[:20000]),
            }
        ),
        flush=True,
    )
    await tailer.start()
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line.strip():
            break
        request = json.loads(line)
        first = state.enforcer.enforce(*request)
        print(json.dumps({"ready": first}), flush=True)
        deadline = time.monotonic() + 10
        while state.enforcer.enforce(*request) == first and time.monotonic() < deadline:
            await asyncio.sleep(0.0005)
        print(json.dumps({"flipped_at": time.time()}), flush=True)
    await tailer.stop()
    await engine.dispose()


# --- the parent ---------------------------------------------------------------------------------


async def revoke(url: str, gid: str) -> float:
    engine = make_async_engine(url)
    sessions = make_session_factory(engine)
    async with sessions() as session, session.begin():
        await policy.remove_source_lines(session, source="grant", source_ids=[gid], by="bench")
    committed = time.time()
    await engine.dispose()
    return committed


def propagation(proc, url: str, rows) -> float:
    live = [
        r
        for r in rows
        if r[0] == "p" and r[4] == "allow" and r[5] <= NOW < r[6] and r[1].startswith("outlet:")
    ]
    rng = random.Random(3)
    delays = []
    outlets = {r[1]: r[3] for r in rows if r[0] == "g"}
    for row in rng.sample(live, ROUNDS):
        request = [row[1], outlets[row[1]], outlets[row[1]], row[3], NOW]
        proc.stdin.write(json.dumps(request) + "\n")
        proc.stdin.flush()
        if not json.loads(proc.stdout.readline())["ready"]:
            continue  # another line (e.g. a block) decides this request; pick the next round
        committed = asyncio.run(revoke(url, row[7]))
        # Other grants may still allow the request; then the flip never comes and the child gives up.
        flipped = json.loads(proc.stdout.readline())["flipped_at"]
        if flipped - committed < 9:
            delays.append((flipped - committed) * 1000)
    return statistics.median(delays) if delays else float("nan")


def casbin_comparison(workdir: Path) -> tuple[float, float, int, int]:
    import casbin

    from app.authz.adapter import TableAdapter
    from app.authz.engine import IndexedEnforcer
    from app.domain.regions import dom_in
    from app.store.db import make_sync_engine

    rows, facts = synthetic_policy(10_000)
    url = build_database(f"sqlite:///{workdir / 'casbin10k.db'}", rows)
    sync_engine = make_sync_engine(url)
    oracle = casbin.Enforcer(str(POLICIES_DIR / "business.conf"), TableAdapter(sync_engine))
    oracle.add_function("dom_in", dom_in)
    oracle.add_named_domain_matching_func("g", dom_in)
    oracle.get_named_role_manager("g").matching_func = None
    oracle.load_policy()
    ours = IndexedEnforcer(load_model(POLICIES_DIR / "business.conf"))
    ours.load([(r[0], *[v for v in r[1:8] if v is not None]) for r in rows])
    reqs = requests(facts, 2000, seed=5)
    casbin_lat, answers = [], []
    started = time.perf_counter()
    for r in reqs:
        t0 = time.perf_counter_ns()
        answers.append(oracle.enforce(*r))
        casbin_lat.append((time.perf_counter_ns() - t0) / 1000)
        if time.perf_counter() - started > CASBIN_TIME_CAP_S and len(answers) >= 1000:
            break
    reqs = reqs[: len(answers)]
    time_checks(ours.enforce, reqs)
    ours_lat = time_checks(ours.enforce, reqs)
    disagreements = sum(ours.enforce(*r) != a for r, a in zip(reqs, answers, strict=True))
    sync_engine.dispose()
    return statistics.median(casbin_lat), statistics.median(ours_lat), disagreements, len(answers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--database-url", help=DATABASE_URL_HELP)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args.child, args.lines))
        return
    with (
        tempfile.TemporaryDirectory(prefix="ssc-bench-") as tmp,
        bench_database(args.database_url, Path(tmp), "authz") as url,
    ):
        workdir = Path(tmp)
        t0 = time.perf_counter()
        rows, _ = synthetic_policy(args.lines)
        build_database(url, rows)
        print(f"built {len(rows):,} lines in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        proc = subprocess.Popen(
            [sys.executable, __file__, "--child", url, "--lines", str(args.lines)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        measured = json.loads(proc.stdout.readline())
        print(f"child: {measured}", file=sys.stderr)
        propagation_ms = propagation(proc, url, rows)
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=60)
        casbin_p50, ours_p50, disagreements, compared = casbin_comparison(workdir)
        print(
            f"casbin 10k: p50 {casbin_p50:.0f} us over {compared} requests; engine p50 {ours_p50:.2f} us; "
            f"{disagreements} disagreements",
            file=sys.stderr,
        )
    print(
        f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "lines": args.lines,
                "database": backend(url),
                "load_s": round(measured["load_s"], 2),
                "rss_mb": round(measured["rss_mb"]),
                "check_p50_us": round(measured["p50"], 2),
                "check_p99_us": round(measured["p99"], 2),
                "ratio_vs_casbin_10k": round(casbin_p50 / ours_p50),
                "disagreements": disagreements,
                "propagation_ms": round(propagation_ms, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
