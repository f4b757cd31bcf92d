"""Mixed workload benchmark (issue 16): partners and administrators at once, at 1, 2 and 4 workers.

    python bench/load.py [--workers 1,2,4] [--seconds 10] [--rounds 3] [--cards 200000]
                         [--outlets 20000] [--connections 16]
                         [--database-url postgresql://postgres@127.0.0.1:5432/test]

Prepares a fresh database (a SQLite file, or a database of its own on the PostgreSQL server named):
the demo tenants, N grassroots platforms in Shenzhen (bench/admin.py's placement) and a Shenzhen
city administrator; N cards imported from a generated CSV; kind grants letting Guangdong's
platforms answer inquiries and reset passwords; partner keys on two platforms. Then, for each
worker count, `ssc serve --workers N` (the real command) on 127.0.0.1 and, for --rounds rounds:

- `cardStatus` alone (the trusted document by hash, --connections, 16 by default): the scaling figure;
- the mix, each operation its own `wrk` at once (bench/loadgen.py): `cardStatus` by hash (8
  connections), `myPermissions` (1), `resetPassword` with a fresh idempotency key each (1), a page of
  20 outlets with their grants for the administrator (1), `createOutlet` (1, a new outlet each).

Figures are the median round's requests/s, p50 and p99 per operation. Every answer is checked (a
GraphQL error counts as one). A run whose wrk thread was the bottleneck is reported without a ratio.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import functools
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.admin import SZ  # noqa: E402
from bench.admin import prepare as place_outlets  # noqa: E402
from bench.cpu import CpuWatch, named, process_tree  # noqa: E402
from bench.databases import DATABASE_URL_HELP, backend, bench_database  # noqa: E402
from bench.loadgen import Run, Scenario, median_run, require_wrk, run, run_together  # noqa: E402
from bench.partner import card_status_document  # noqa: E402
from tests.procsrv import ServeProcess  # noqa: E402

UNLIMITED = "1000000/second"
# All cores this busy (server, database and wrk together): the machine, not the server, set the pace.
SATURATED_SHARE = 0.9
START_TIMEOUT_S = 120
PINS = ("258147", "369258", "147036", "802461", "531864")
PAGE = (
    "query($t: String!) { outlets(tenant: $t, first: 20) {"
    " edges { node { id name grants { id service state } } } } }"
)
CREATE = (
    'mutation { createOutlet(input: {id: "%s-$N", tenant: "cn/440000/440300/440305", kind: "hrss_hall",'
    ' name: "负载测试网点"}) { outlet { id } } }'
)
RESET = (
    "mutation($c: String!, $i: String!, $p: String!, $k: String!) { resetPassword(input: {cardNumber: $c,"
    " idNumber: $i, identityVerified: true, newPin: $p, idempotencyKey: $k}) { card { status } } }"
)


async def prepare(url: str, workdir: Path, cards: int, outlets: int) -> tuple[str, list[str], list[dict]]:
    """The database; returns the administrator's token, two partner keys and Guangdong's cards."""
    from app.ops.cards.imports.importer import import_cards
    from app.ops.demo.generate import generate
    from app.ops.grants.changes import GrantRequest, grant_service
    from app.ops.partner_keys.keys import create_partner_key
    from app.settings import get_settings, resolve_keys
    from app.store.crypto import FieldCipher
    from app.store.db import make_async_engine, make_session_factory

    token, placed = await place_outlets(url, outlets)  # migrates nothing: main() did
    engine = make_async_engine(url)
    sessions = make_session_factory(engine)
    cipher = FieldCipher(*resolve_keys(get_settings()))
    card_file = workdir / "cards.csv"
    await generate(sessions, cipher, cards=cards, outlets=0, seed=2, csv_path=card_file)
    summary = await import_cards(sessions, cipher, card_file)
    if summary.imported != cards:
        raise SystemExit(f"card import: {summary}")
    async with sessions() as session, session.begin():
        for service in ("info_inquiry", "password_reset"):
            request = GrantRequest(
                tenant="cn/440000",
                service=service,
                outlet_kind="grassroots_platform",
                valid_from=datetime(2026, 1, 1, tzinfo=UTC),
                document_ref="粤人社函〔2026〕2号",
            )
            await grant_service(session, request, actor="bench")
        keys = [
            (
                await create_partner_key(
                    session, outlet_id, days=30, actor="bench", rate_limit=UNLIMITED, max_rate_limit=UNLIMITED
                )
            ).key
            for outlet_id, _ in placed[:2]
        ]
    await engine.dispose()
    with card_file.open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["issuing_tenant"].startswith("cn/440000")]
    return token, keys, random.Random(3).sample(rows, min(2000, len(rows)))


def serve(url: str, workdir: Path, workers: int) -> ServeProcess:
    """`ssc serve --workers N` on the benchmark's database, every worker ready."""
    server = ServeProcess(
        url,
        workdir / "keys.env",
        "--workers",
        str(workers),
        partner_rate_limit=UNLIMITED,
        partner_rate_limit_max=UNLIMITED,
        log_level="warning",
    )
    server.start(wait=False)
    server.wait_ready(time.monotonic() + START_TIMEOUT_S)
    # Every worker must have loaded its policy: /readyz answers from whichever one accepted.
    for _ in range(workers * 20):
        if httpx.get(f"{server.base}/readyz", timeout=5).status_code != 200:
            server.stop()
            raise SystemExit("a worker is not ready")
    return server


def scenarios(
    token: str, keys: list[str], cards: list[dict], tag: str, connections: int = 16
) -> tuple[Scenario, list[Scenario]]:
    pairs = [(c["card_number"], c["id_number"]) for c in cards]
    trusted = json.dumps(
        {
            "extensions": {"persistedQuery": {"version": 1, "sha256Hash": card_status_document().sha256}},
            "variables": {"cardNumber": "%s", "idNumber": "%s"},
        }
    )
    admin = {"Authorization": f"Bearer {token}"}
    partner = {"X-Api-Key": keys[0]}
    resets = [(c, i, pin) for (c, i), pin in zip(pairs, PINS * len(pairs), strict=False)]
    reset_body = json.dumps(
        {"query": RESET, "variables": {"c": "%s", "i": "%s", "p": "%s", "k": f"{tag}-$N"}}
    )
    alone = Scenario("card_status", "/graphql", trusted, pairs, partner, connections)
    mix = [
        Scenario("card_status", "/graphql", trusted, pairs, partner, 8),
        Scenario(
            "my_permissions", "/graphql", '{"query": "{ myPermissions { service } }"}', [()], partner, 1
        ),
        Scenario("reset_password", "/graphql", reset_body, resets, {"X-Api-Key": keys[1]}, 1),
        Scenario(
            "outlet_page", "/graphql", json.dumps({"query": PAGE, "variables": {"t": SZ}}), [()], admin, 1
        ),
        Scenario("create_outlet", "/graphql", json.dumps({"query": CREATE % tag}), [()], admin, 1),
    ]
    return alone, mix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cards", type=int, default=200_000)
    parser.add_argument("--outlets", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=16, help="of cardStatus alone")
    parser.add_argument("--database-url", help=DATABASE_URL_HELP)
    args = parser.parse_args()
    require_wrk()
    counts = [int(n) for n in args.workers.split(",")]
    results: dict[int, dict] = {}
    cores: dict[Run, dict[str, float]] = {}  # cores each group used during a cardStatus-alone run
    usage: dict[int, dict[str, float]] = {}  # ... during the median one, per worker count
    with (
        tempfile.TemporaryDirectory(prefix="ssc-load-") as tmp,
        bench_database(args.database_url, Path(tmp), "load") as url,
    ):
        workdir = Path(tmp)
        os.environ.update({"SSC_DATABASE_URL": url, "SSC_KEY_FILE": str(workdir / "keys.env")})
        from app.store import migrate

        migrate.upgrade(url)
        started = time.perf_counter()
        token, keys, cards = asyncio.run(prepare(url, workdir, args.cards, args.outlets))
        print(f"setup {time.perf_counter() - started:.0f} s", file=sys.stderr)
        for workers in counts:
            server = serve(url, workdir, workers)
            base = server.base
            try:
                alone_runs: list[Run] = []
                mixed_runs: dict[str, list[Run]] = {}
                for n in range(args.rounds):
                    alone, mix = scenarios(token, keys, cards, f"ld-w{workers}-r{n}", args.connections)
                    if n == 0:
                        run(base, workdir, alone, 2)  # warm up every worker
                    watch = CpuWatch(
                        {
                            "server": functools.partial(process_tree, server.process.pid),
                            "postgresql": functools.partial(named, "postgres"),
                        }
                    )
                    watch.start()
                    alone_runs.append(run(base, workdir, alone, args.seconds))
                    cores[alone_runs[-1]] = watch.stop()
                    for r in run_together(base, workdir, mix, args.seconds):
                        mixed_runs.setdefault(r.name, []).append(r)
            finally:
                server.stop()
            usage[workers] = cores[median_run(alone_runs)]
            results[workers] = {
                "card_status_alone": median_run(alone_runs),
                **{name: median_run(runs) for name, runs in mixed_runs.items()},
            }
            used, wrk = usage[workers], results[workers]["card_status_alone"].generator_cpu_share
            print(
                f"{workers} worker(s), cardStatus alone: server {used['server']:.2f} cores, PostgreSQL "
                f"{used['postgresql']:.2f}, wrk {wrk:.2f} of {os.cpu_count()}",
                file=sys.stderr,
            )
            for name, r in results[workers].items():
                print(
                    f"{workers} worker(s) {name}: {r.rps:,.0f} req/s, p50 {r.p50_ms:.2f} ms, "
                    f"p99 {r.p99_ms:.2f} ms, {r.errors} errors, wrk busy {r.generator_cpu_share:.0%}",
                    file=sys.stderr,
                )
        database = backend(url)
    figures: dict = {"database": database, "cards": args.cards, "outlets": args.outlets}
    for workers, found in results.items():
        figures[f"workers_{workers}"] = {
            name: {"rps": round(r.rps), "p50_ms": round(r.p50_ms, 2), "p99_ms": round(r.p99_ms, 2)}
            for name, r in found.items()
        }
    figures["cores_used_card_status_alone"] = {
        f"workers_{w}": {
            **{k: round(v, 2) for k, v in used.items()},
            "wrk": round(results[w]["card_status_alone"].generator_cpu_share, 2),
        }
        for w, used in usage.items()
    }
    figures["machine_cores"] = os.cpu_count()
    figures["errors"] = sum(r.errors for found in results.values() for r in found.values())
    bound = sorted(
        {f"{w}:{r.name}" for w, found in results.items() for r in found.values() if r.generator_bound}
    )
    if bound:
        figures["generator_bound"] = bound
        print(f"no ratios: the load generator was the bottleneck in {', '.join(bound)}", file=sys.stderr)
    saturated = [
        w
        for w, used in usage.items()
        if sum(used.values()) + results[w]["card_status_alone"].generator_cpu_share
        >= SATURATED_SHARE * (os.cpu_count() or 1)
    ]
    if saturated:
        # More workers cannot run faster when the cores are all busy (the database and the load
        # generator on the same machine): a ratio would measure the machine, not the server.
        figures["machine_saturated_at_workers"] = saturated
        print(f"the machine's cores were all busy with {saturated} worker(s)", file=sys.stderr)
    if not bound and 1 in results:
        one = results[1]["card_status_alone"].rps
        figures["card_status_scaling"] = {
            f"{w}_to_1": "machine saturated"
            if w in saturated
            else round(found["card_status_alone"].rps / one, 2)
            for w, found in results.items()
            if w != 1
        }
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
