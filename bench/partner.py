"""Partner API benchmark (issue 5): cardStatus throughput and latency beside two baselines, and
the card import rate.

    python bench/partner.py [--cards 1000000] [--outlets 100000] [--seconds 10] [--rounds 3]
                            [--concurrency 16]

Builds a fresh SQLite database: the demo tenants, N outlets, and N cards written by `ssc cards
import` from a generated CSV (the import is timed). A kind grant lets Guangdong's grassroots
platforms answer inquiries; one platform gets a partner key. The real app runs under uvicorn (one
worker, a separate process) with one extra plain Starlette endpoint doing the same work as
cardStatus (bench/partner_app.py). A load generator on 127.0.0.1 then drives, one after the other:
`{ __typename }` through GraphQL (the stack's ceiling), the plain endpoint, and cardStatus, taking
turns for --rounds rounds (medians reported) — with
`wrk` (Debian package `wrk`, one thread, bounded duration) when it is installed, else with a
bounded Python async client, which itself tops out near 500 requests/s here. The generator shares
the 2-core machine with the server. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STATUS = (
    "query($c: String!, $i: String!) { cardStatus(cardNumber: $c, idNumber: $i) "
    "{ status socialFunction pinState idNumberMasked } }"
)
OUTLET = "gz-th-wushan"
START_TIMEOUT_S = 60
UNLIMITED = "1000000/second"
SCENARIOS = ("trivial", "plain", "card_status")


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def drive(base: str, make_request, seconds: float, concurrency: int) -> tuple[float, list[float], int]:
    """Requests per second, latencies in ms and errors, over `seconds` of `concurrency` loops."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def loop(n: int) -> None:
            nonlocal errors
            rng = random.Random(n)
            while time.perf_counter() < deadline:
                method, path, kwargs, ok = make_request(rng)
                t0 = time.perf_counter()
                response = await client.request(method, path, **kwargs)
                latencies.append((time.perf_counter() - t0) * 1000)
                if not ok(response):
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(loop(n) for n in range(concurrency)))
        elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, latencies, errors


WRK_SCRIPT = """
local items = {%(items)s}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%(headers)s
request = function()
  local it = items[math.random(#items)]
  return wrk.format(nil, "%(path)s", nil, string.format(%(template)s, it[1], it[2]))
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK {\\"requests\\": %%d, \\"seconds\\": %%f, \\"p50_ms\\": %%f, \\"p99_ms\\": %%f, "
    .. "\\"errors\\": %%d}\\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def drive_wrk(
    base: str,
    workdir: Path,
    name: str,
    path: str,
    template: str,
    items,
    headers: dict,
    seconds: float,
    concurrency: int,
) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, errors) from one wrk run; `template` formats two %s per item."""
    script = workdir / f"{name}.lua"
    script.write_text(
        WRK_SCRIPT
        % {
            "items": ", ".join(f"{{{lua_string(a)}, {lua_string(b)}}}" for a, b in items),
            "headers": "\n".join(
                f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items()
            ),
            "path": path,
            "template": lua_string(template),
        }
    )
    out = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{int(seconds)}s", "--timeout", "30s", "-s", str(script), base],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    found = json.loads(out.split("WRK ", 1)[1].splitlines()[0])
    return found["requests"] / found["seconds"], found["p50_ms"], found["p99_ms"], found["errors"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=1_000_000)
    parser.add_argument("--outlets", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10, help="per scenario and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ssc-partner-") as tmp:
        workdir = Path(tmp)
        url = f"sqlite:///{workdir / 'partner.db'}"
        os.environ.update({"SSC_DATABASE_URL": url, "SSC_KEY_FILE": str(workdir / "keys.env")})
        t0 = time.perf_counter()
        key, cards, import_rate = asyncio.run(prepare(url, workdir, args.cards, args.outlets))
        print(f"setup {time.perf_counter() - t0:.0f} s; import {import_rate:,.0f} rows/s", file=sys.stderr)
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
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("server did not become ready")
                time.sleep(0.2)
            headers = {"X-Api-Key": key}

            def trivial(rng):
                return (
                    "POST",
                    "/graphql",
                    {"json": {"query": "{ __typename }"}},
                    lambda r: r.status_code == 200,
                )

            def plain(rng):
                card = rng.choice(cards)
                body = {"cardNumber": card["card_number"], "idNumber": card["id_number"]}
                return (
                    "POST",
                    "/plain/card-status",
                    {"json": body, "headers": headers},
                    (lambda r: r.status_code == 200),
                )

            def graphql(rng):
                card = rng.choice(cards)
                body = {"query": STATUS, "variables": {"c": card["card_number"], "i": card["id_number"]}}
                return (
                    "POST",
                    "/graphql",
                    {"json": body, "headers": headers},
                    (lambda r: r.status_code == 200 and "errors" not in r.json()),
                )

            for name, make in (("plain", plain), ("card_status", graphql)):  # answers correctly?
                method, path, kwargs, _ = make(random.Random(0))
                response = httpx.request(method, base + path, **kwargs)
                if response.status_code != 200 or "errors" in response.text:
                    raise SystemExit(f"{name} does not answer as expected: {response.text[:300]}")
            if shutil.which("wrk"):
                pairs = [(c["card_number"], c["id_number"]) for c in cards]
                status_body = json.dumps({"query": STATUS, "variables": {"c": "CARD", "i": "IDNO"}})
                scenarios = {
                    "trivial": ("/graphql", '{"query": "{ __typename }"}%s%s', [("", "")], {}),
                    "plain": ("/plain/card-status", '{"cardNumber": "%s", "idNumber": "%s"}', pairs, headers),
                    "card_status": (
                        "/graphql",
                        status_body.replace("CARD", "%s").replace("IDNO", "%s"),
                        pairs,
                        headers,
                    ),
                }

                def measure(name: str, seconds: float) -> tuple[float, float, float, int]:
                    path, template, items, hdrs = scenarios[name]
                    return drive_wrk(
                        base, workdir, name, path, template, items, hdrs, seconds, args.concurrency
                    )

            else:
                makers = {"trivial": trivial, "plain": plain, "card_status": graphql}

                def measure(name: str, seconds: float) -> tuple[float, float, float, int]:
                    rps, lat, errors = asyncio.run(drive(base, makers[name], seconds, args.concurrency))
                    lat.sort()
                    return rps, statistics.median(lat), lat[int(0.99 * (len(lat) - 1))], errors

            # The scenarios take turns, round after round, so that a passing disturbance on the shared
            # machine hits all three alike; each figure is the median over the rounds.
            rounds: dict[str, list[tuple[float, float, float, int]]] = {n: [] for n in SCENARIOS}
            for name in SCENARIOS:
                measure(name, 2)  # warm up
            for _ in range(args.rounds):
                for name in SCENARIOS:
                    rounds[name].append(measure(name, args.seconds))
            results = {
                name: (
                    statistics.median(r[0] for r in runs),
                    statistics.median(r[1] for r in runs),
                    statistics.median(r[2] for r in runs),
                    sum(r[3] for r in runs),
                )
                for name, runs in rounds.items()
            }
            for name, runs in rounds.items():
                print(
                    f"{name}: " + ", ".join(f"{r[0]:,.0f}" for r in runs) + " req/s in the rounds; median "
                    f"{results[name][0]:,.0f} req/s, p50 {results[name][1]:.2f} ms, "
                    f"p99 {results[name][2]:.2f} ms, {results[name][3]} errors",
                    file=sys.stderr,
                )
        finally:
            server.terminate()
            server.wait(timeout=30)
    card_status, plain_r, trivial_r = results["card_status"], results["plain"], results["trivial"]
    print(
        json.dumps(
            {
                "card_status_rps": round(card_status[0]),
                "plain_rps": round(plain_r[0]),
                "trivial_rps": round(trivial_r[0]),
                "ratio": round(card_status[0] / plain_r[0], 3),
                "ratio_to_trivial": round(card_status[0] / trivial_r[0], 3),
                "p50_ms": round(card_status[1], 2),
                "p99_ms": round(card_status[2], 2),
                "import_rows_per_s": round(import_rate),
                "cards": args.cards,
                "outlets": args.outlets,
                "errors": card_status[3] + plain_r[3] + trivial_r[3],
            }
        )
    )


if __name__ == "__main__":
    main()
