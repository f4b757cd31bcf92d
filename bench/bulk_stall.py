"""Does a large bulkGrant stall the partner path? (issue 16: cardStatus p99 during a bulkGrant of
100,000 outlets ≤ 3× its p99 without one, on the same worker.)

    python bench/bulk_stall.py [--outlets 100000] [--seconds 12] [--rounds 3]
                               [--database-url postgresql://postgres@127.0.0.1:5432/test]

Prepares what bench/load.py does (the outlets are Shenzhen's grassroots platforms, the partner keys on
two of them) and serves it with one `ssc serve` worker. Then, round after round: cardStatus by the
trusted document's hash (wrk, 16 connections) for --seconds alone — the baseline — and for --seconds
again with, 2 s in, an administrator's `bulkGrant` of `activation` to every one of those outlets (each
round grants it afresh: the previous round's grants are revoked in bulk first, outside the timed
windows). Reported: the median round's p50 and p99 of both windows, their ratio, and how long the
bulk grant took. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.admin import bulk_variables  # noqa: E402
from bench.databases import DATABASE_URL_HELP, backend, bench_database  # noqa: E402
from bench.load import prepare, scenarios, serve  # noqa: E402
from bench.loadgen import finish, median_run, require_wrk, start  # noqa: E402

BULK_AFTER_S = 2
BULK = "mutation($i: BulkGrantInput!) { bulkGrant(input: $i) { count state firstGrantId lastGrantId } }"


def bulk_grant(base: str, token: str, round_: int) -> tuple[float, dict]:
    variables = bulk_variables("activation", f"深人社函〔2026〕{300 + round_}号")
    started = time.perf_counter()
    body = httpx.post(
        f"{base}/graphql",
        json={"query": BULK, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=300,
    ).json()
    if "errors" in body:
        raise SystemExit(f"bulkGrant failed: {body['errors']}")
    return time.perf_counter() - started, body["data"]["bulkGrant"]


async def revoke_grants(url: str, first: int, last: int) -> None:
    """The previous round's grants, ended straight in the database with their policy lines, so that
    the next round grants them afresh (outside the timed windows)."""
    from sqlmodel import select

    from app.store import policy
    from app.store.db import make_async_engine, make_session_factory
    from app.store.tables import Grant

    engine = make_async_engine(url)
    try:
        async with make_session_factory(engine)() as session, session.begin():
            grants = (await session.exec(select(Grant).where(Grant.id >= first, Grant.id <= last))).all()
            for grant in grants:
                grant.state = "revoked"
            ids = [str(g.id) for g in grants]
            await policy.remove_source_lines(session, source="grant", source_ids=ids, by="bench")
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outlets", type=int, default=100_000)
    parser.add_argument("--cards", type=int, default=20_000)
    parser.add_argument("--seconds", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", help=DATABASE_URL_HELP)
    args = parser.parse_args()
    require_wrk()
    quiet, busy, bulk_seconds = [], [], []
    with (
        tempfile.TemporaryDirectory(prefix="ssc-stall-") as tmp,
        bench_database(args.database_url, Path(tmp), "stall") as url,
    ):
        workdir = Path(tmp)
        os.environ.update({"SSC_DATABASE_URL": url, "SSC_KEY_FILE": str(workdir / "keys.env")})
        from app.store import migrate

        migrate.upgrade(url)
        token, keys, cards = asyncio.run(prepare(url, workdir, args.cards, args.outlets))
        server = serve(url, workdir, 1)
        base = server.base
        try:
            alone, _ = scenarios(token, keys, cards, "stall")
            finish("warm-up", start(base, workdir, alone, 2))
            for round_ in range(args.rounds):
                quiet.append(finish("quiet", start(base, workdir, alone, args.seconds)))
                during = start(base, workdir, alone, args.seconds)
                time.sleep(BULK_AFTER_S)
                took, granted = bulk_grant(base, token, round_)
                busy.append(finish("bulk", during))
                bulk_seconds.append(took)
                if granted["count"] != args.outlets:
                    raise SystemExit(f"bulkGrant granted {granted['count']}, not {args.outlets}")
                print(
                    f"round {round_ + 1}: quiet p99 / p99.9 / max {quiet[-1].p99_ms:.1f} /"
                    f" {quiet[-1].p999_ms:.1f} / {quiet[-1].max_ms:.1f} ms, during the bulk grant"
                    f" {busy[-1].p99_ms:.1f} / {busy[-1].p999_ms:.1f} / {busy[-1].max_ms:.1f} ms"
                    f" (bulk grant {took:.2f} s)",
                    file=sys.stderr,
                )
                asyncio.run(revoke_grants(url, int(granted["firstGrantId"]), int(granted["lastGrantId"])))
                time.sleep(2)  # the worker applies the revocations from the change log
        finally:
            server.stop()
        database = backend(url)
    q, b = median_run(quiet, by="p99_ms"), median_run(busy, by="p99_ms")
    figures = {
        "database": database,
        "outlets": args.outlets,
        "quiet_p50_ms": round(q.p50_ms, 2),
        "quiet_p99_ms": round(q.p99_ms, 2),
        "during_bulk_p50_ms": round(b.p50_ms, 2),
        "during_bulk_p99_ms": round(b.p99_ms, 2),
        # A stall of a few hundred ms delays only the calls in flight, too few to move a p99.
        "quiet_p999_ms": round(median_run(quiet, by="p999_ms").p999_ms, 2),
        "during_bulk_p999_ms": round(median_run(busy, by="p999_ms").p999_ms, 2),
        "quiet_max_ms": round(median_run(quiet, by="max_ms").max_ms, 2),
        "during_bulk_max_ms": round(median_run(busy, by="max_ms").max_ms, 2),
        "bulk_grant_s": round(sorted(bulk_seconds)[len(bulk_seconds) // 2], 2),
        "errors": sum(r.errors for r in quiet + busy),
    }
    if any(r.generator_bound for r in quiet + busy):
        print("no ratio: the load generator was the bottleneck", file=sys.stderr)
    else:
        figures["p99_ratio"] = round(b.p99_ms / q.p99_ms, 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
