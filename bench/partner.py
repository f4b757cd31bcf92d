"""Partner API benchmark (issue 5, 16): cardStatus throughput and latency beside two baselines,
sent as text and as a trusted document, and the card import rate.

    python bench/partner.py [--cards 1000000] [--outlets 100000] [--seconds 10] [--rounds 3]
                            [--concurrency 16] [--database-url postgresql://postgres@127.0.0.1:5432/test]

Builds a fresh database (SQLite file, or a database of its own on the PostgreSQL server named): the
demo tenants, N outlets, and N cards written by `import_cards` from a generated CSV (the import is
timed). A kind grant lets Guangdong's grassroots platforms answer inquiries; one platform gets a
partner key. The real app runs under uvicorn (one worker, a separate process) with one extra plain
Starlette endpoint doing the same work as cardStatus (bench/partner_app.py). `wrk` (bench/loadgen.py;
one thread, bounded duration, random cards) on 127.0.0.1 then drives, one after the other:
`{ __typename }` through GraphQL (the stack's ceiling), the plain endpoint, cardStatus with the
document's text, and cardStatus by the trusted document's sha256Hash, taking turns for --rounds
rounds (the median round reported). The generator shares the 2-core machine with the server; when
wrk's thread was the bottleneck, no ratio is printed. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.databases import DATABASE_URL_HELP, backend, bench_database  # noqa: E402
from bench.loadgen import Run, Scenario, median_run, require_wrk, run  # noqa: E402
from tests.procsrv import free_port  # noqa: E402

OUTLET = "gz-th-wushan"
START_TIMEOUT_S = 60
UNLIMITED = "1000000/second"
SCENARIOS = ("trivial", "plain", "card_status", "card_status_trusted")


async def prepare(url: str, workdir: Path, cards: int, outlets: int) -> tuple[str, list[dict], float]:
    from app.ops.cards.imports.importer import import_cards
    from app.ops.demo.generate import generate
    from app.ops.grants.changes import GrantRequest, grant_service
    from app.ops.partner_keys.keys import create_partner_key
    from app.ops.tenants.apply import apply_tenant_files
    from app.settings import get_settings, resolve_keys
    from app.store import migrate
    from app.store.crypto import FieldCipher
    from app.store.db import make_async_engine, make_session_factory

    migrate.upgrade(url)
    engine = make_async_engine(url)
    sessions = make_session_factory(engine)
    await apply_tenant_files(sessions, ROOT / "tenants")
    cipher = FieldCipher(*resolve_keys(get_settings()))
    card_file = workdir / "cards.csv"
    await generate(sessions, cipher, cards=0, outlets=outlets, seed=1)
    await generate(sessions, cipher, cards=cards, outlets=0, seed=2, csv_path=card_file)
    # The import starts from a settled database, as `ssc cards import` after `ssc demo generate`
    # would: the generator's connections closed (its WAL checkpointed), a fresh engine.
    await engine.dispose()
    engine = make_async_engine(url)
    sessions = make_session_factory(engine)
    started = time.perf_counter()
    summary = await import_cards(sessions, cipher, card_file)
    import_rate = summary.imported / (time.perf_counter() - started)
    async with sessions() as session, session.begin():
        request = GrantRequest(
            tenant="cn/440000",
            service="info_inquiry",
            outlet_kind="grassroots_platform",
            valid_from=datetime(2026, 1, 1, tzinfo=UTC),
            document_ref="粤人社函〔2026〕1号",
        )
        await grant_service(session, request, actor="bench")
        # Far above the platform's cap: the benchmark measures the server, not the limiter's refusals.
        key = await create_partner_key(
            session, OUTLET, days=30, actor="bench", rate_limit=UNLIMITED, max_rate_limit=UNLIMITED
        )
    await engine.dispose()
    with card_file.open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["issuing_tenant"].startswith("cn/440000")]
    return key.key, random.Random(3).sample(rows, min(2000, len(rows))), import_rate


def card_status_document():
    """The trusted CardStatus document (`ssc partner-documents`): its text and sha256Hash."""
    from app.graphql.schema import build_schema
    from app.settings import get_settings

    return next(d for d in build_schema(get_settings()).trusted_documents if d.name == "CardStatus")


def scenarios(key: str, cards: list[dict], concurrency: int) -> dict[str, Scenario]:
    pairs = [(c["card_number"], c["id_number"]) for c in cards]
    headers = {"X-Api-Key": key}
    # The same document both ways: as its text (parsed, validated and run like any query) and by its
    # hash (the registered document, never parsed again).
    document = card_status_document()
    variables = {"cardNumber": "%s", "idNumber": "%s"}
    status_body = json.dumps({"query": document.text, "variables": variables})
    trusted_body = json.dumps(
        {
            "extensions": {"persistedQuery": {"version": 1, "sha256Hash": document.sha256}},
            "variables": variables,
        }
    )
    return {
        "trivial": Scenario("trivial", "/graphql", '{"query": "{ __typename }"}', [()], {}, concurrency),
        "plain": Scenario(
            "plain",
            "/plain/card-status",
            '{"cardNumber": "%s", "idNumber": "%s"}',
            pairs,
            headers,
            concurrency,
        ),
        "card_status": Scenario("card_status", "/graphql", status_body, pairs, headers, concurrency),
        "card_status_trusted": Scenario(
            "card_status_trusted", "/graphql", trusted_body, pairs, headers, concurrency
        ),
    }


def start_server(url: str, workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.partner_app:create_bench_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return server, base
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise SystemExit("server did not become ready")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=1_000_000)
    parser.add_argument("--outlets", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10, help="per scenario and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--database-url", help=DATABASE_URL_HELP)
    args = parser.parse_args()
    require_wrk()
    with (
        tempfile.TemporaryDirectory(prefix="ssc-partner-") as tmp,
        bench_database(args.database_url, Path(tmp), "partner") as url,
    ):
        workdir = Path(tmp)
        os.environ.update({"SSC_DATABASE_URL": url, "SSC_KEY_FILE": str(workdir / "keys.env")})
        t0 = time.perf_counter()
        key, cards, import_rate = asyncio.run(prepare(url, workdir, args.cards, args.outlets))
        print(f"setup {time.perf_counter() - t0:.0f} s; import {import_rate:,.0f} rows/s", file=sys.stderr)
        server, base = start_server(url, workdir)
        try:
            planned = scenarios(key, cards, args.concurrency)
            for scenario in planned.values():  # answers correctly? (wrk counts any error)
                check = run(base, workdir, scenario, 1)
                if check.errors or not check.requests:
                    raise SystemExit(f"{scenario.name} does not answer as expected: {check}")
            # The scenarios take turns, round after round, so that a passing disturbance on the shared
            # machine hits all alike; each figure is the median over the rounds.
            rounds: dict[str, list[Run]] = {n: [] for n in SCENARIOS}
            for _ in range(args.rounds):
                for name in SCENARIOS:
                    rounds[name].append(run(base, workdir, planned[name], args.seconds))
        finally:
            server.terminate()
            server.wait(timeout=30)
    results = {name: median_run(runs) for name, runs in rounds.items()}
    for name, runs in rounds.items():
        r = results[name]
        print(
            f"{name}: " + ", ".join(f"{x.rps:,.0f}" for x in runs) + " req/s in the rounds; median "
            f"{r.rps:,.0f} req/s, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms, {r.errors} errors, "
            f"wrk busy {r.generator_cpu_share:.0%}",
            file=sys.stderr,
        )
    bound = [name for name, r in results.items() if r.generator_bound]
    figures = {
        "database": backend(url),
        **{f"{name}_rps": round(r.rps) for name, r in results.items()},
        "p50_ms": round(results["card_status"].p50_ms, 2),
        "p99_ms": round(results["card_status"].p99_ms, 2),
        "trusted_p50_ms": round(results["card_status_trusted"].p50_ms, 2),
        "trusted_p99_ms": round(results["card_status_trusted"].p99_ms, 2),
        "import_rows_per_s": round(import_rate),
        "cards": args.cards,
        "outlets": args.outlets,
        "errors": sum(r.errors for r in results.values()),
    }
    if bound:
        print(f"no ratios: the load generator was the bottleneck in {', '.join(bound)}", file=sys.stderr)
        figures["generator_bound"] = bound
    else:
        trivial = results["trivial"].rps
        figures |= {
            "ratio": round(results["card_status"].rps / results["plain"].rps, 3),
            "ratio_to_trivial": round(results["card_status"].rps / trivial, 3),
            "trusted_ratio_to_trivial": round(results["card_status_trusted"].rps / trivial, 3),
        }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
