"""Admin API benchmark (issue 4): one card service to 100,000 outlets with one bulkGrant call.

    python bench/admin.py [--outlets 100000] [--database-url postgresql://...]

Builds the demo tenant tree in a fresh database (a temporary SQLite file by default) with N
grassroots platforms spread over Shenzhen's districts (bulk inserts, each with its kind-group
policy line), starts the real app under uvicorn on 127.0.0.1, and times one `bulkGrant` over
HTTP, end to end, selecting every one of those outlets. Then it watches the server's own
in-memory engine until the new grants are enforced (first, last and sampled outlets) and checks
the database holds one grant and one policy line per outlet. The last line of output is one JSON
object with `bulk_grant_100k_s`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import func, insert
from sqlmodel import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.authz.projection import outlet_group_line  # noqa: E402
from app.ops.principals.credentials import create_principal_with_token  # noqa: E402
from app.ops.tenants.apply import apply_tenant_files  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.store import migrate, policy  # noqa: E402
from app.store.db import make_async_engine, make_session_factory  # noqa: E402
from app.store.tables import Grant, Outlet, PolicyLine, Tenant  # noqa: E402
from app.store.tables.common import utcnow  # noqa: E402
from app.web import create_app  # noqa: E402
from bench.databases import DATABASE_URL_HELP, bench_database  # noqa: E402
from tests.livesrv import serve  # noqa: E402  (the same live server the tests use)

SZ = "cn/440000/440300"
DISTRICTS = ("cn/440000/440300/440303", "cn/440000/440300/440304", "cn/440000/440300/440305")
SERVICE = "password_reset"
NOW = "2026-06-01T00:00:00Z"
BATCH = 10_000
START_TIMEOUT_S = 30
REQUEST_TIMEOUT_S = 120
ENFORCE_TIMEOUT_S = 60
SAMPLES = 200

PAGE = (
    "query($t: String!) { outlets(tenant: $t, first: 100) {"
    " edges { node { id tenant { path } grants { id service state } } } } }"
)
PAGE_RUNS = 50
BULK = (
    "mutation($i: BulkGrantInput!) { bulkGrant(input: $i) {"
    " count state firstGrantId lastGrantId sampleOutletIds } }"
)


def bulk_variables(service: str, document_ref: str) -> dict:
    """The bulkGrant the benchmarks send: `service` to every bench outlet `prepare` made in Shenzhen."""
    return {
        "i": {
            "tenant": SZ,
            "service": service,
            "validFrom": "2026-01-01T00:00:00Z",
            "documentRef": document_ref,
            "reason": "benchmark",
            "selector": {"under": SZ, "kind": "grassroots_platform", "search": "bench-"},
        }
    }


async def prepare(url: str, outlets: int) -> tuple[str, list[tuple[str, str]]]:
    """The demo tree, `outlets` grassroots platforms in Shenzhen, and a Shenzhen admin's token."""
    engine = make_async_engine(url)
    sessions = make_session_factory(engine)
    await apply_tenant_files(sessions, ROOT / "tenants")
    placed: list[tuple[str, str]] = []
    async with sessions() as session, session.begin():
        tenants = dict(
            (await session.exec(select(Tenant.path, Tenant.id).where(Tenant.path.in_(DISTRICTS)))).all()
        )
        now = utcnow()
        for start in range(0, outlets, BATCH):
            rows, lines = [], []
            for n in range(start, min(start + BATCH, outlets)):
                path = DISTRICTS[n % len(DISTRICTS)]
                outlet_id = f"bench-{n:07d}"
                rows.append(
                    {
                        "id": outlet_id,
                        "tenant_id": tenants[path],
                        "kind": "grassroots_platform",
                        "name": f"基准社区服务站 {n}",
                        "nbs_code": f"{path[-6:]}{n:06d}",
                        "status": "open",
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                lines.append(outlet_group_line(outlet_id, "grassroots_platform", path))
                placed.append((outlet_id, path))
            await session.exec(insert(Outlet), params=rows)
            await policy.add_lines(session, lines, by="bench")
    issued = await create_principal_with_token(
        sessions, tenant_path=SZ, role="city_admin", name="bench.admin"
    )
    await engine.dispose()
    return issued.token, placed


async def stored_counts(url: str) -> tuple[int, int]:
    engine = make_async_engine(url)
    sessions = make_session_factory(engine)
    async with sessions() as session:
        grants = (await session.exec(select(func.count()).select_from(Grant))).one()
        lines = (
            await session.exec(
                select(func.count()).select_from(PolicyLine).where(PolicyLine.source == "grant")
            )
        ).one()
    await engine.dispose()
    return grants, lines


def wait_ready(client: httpx.Client, base: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while client.get(f"{base}/readyz").status_code != 200:
        if time.monotonic() > deadline:
            raise RuntimeError("server never became ready")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outlets", type=int, default=100_000)
    parser.add_argument("--database-url", help=DATABASE_URL_HELP)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_database(args.database_url, Path(tmp), "admin") as url,
    ):
        migrate.upgrade(url)
        t0 = time.perf_counter()
        token, placed = asyncio.run(prepare(url, args.outlets))
        setup_s = time.perf_counter() - t0
        app = create_app(Settings(database_url=url))
        business = app.state.business
        rng = random.Random(4)
        probes = [placed[0], placed[-1], *rng.sample(placed, min(SAMPLES, len(placed)))]

        def enforced(outlet_id: str, path: str) -> bool:
            return business.enforcer.enforce(f"outlet:{outlet_id}", path, path, SERVICE, NOW)

        with serve(app) as base, httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
            wait_ready(client, base)
            assert not any(enforced(*p) for p in probes), "a probe outlet was allowed before the grant"
            variables = bulk_variables(SERVICE, "深人社函〔2026〕100号")
            t0 = time.perf_counter()
            response = client.post(
                f"{base}/graphql",
                json={"query": BULK, "variables": variables},
                headers={"Authorization": f"Bearer {token}"},
            )
            bulk_s = time.perf_counter() - t0
            body = response.json()
            if "errors" in body:
                raise SystemExit(f"bulkGrant failed: {body['errors']}")
            result = body["data"]["bulkGrant"]
            deadline = time.monotonic() + ENFORCE_TIMEOUT_S
            while not all(enforced(*p) for p in probes):
                if time.monotonic() > deadline:
                    raise SystemExit("the grants were not enforced in time")
                time.sleep(0.005)
            enforced_s = time.perf_counter() - t0 - bulk_s
            # A page of 100 outlets with their tenant and grants (each outlet now has one grant).
            page_ms = []
            for _ in range(PAGE_RUNS):
                t1 = time.perf_counter()
                page = client.post(
                    f"{base}/graphql",
                    json={"query": PAGE, "variables": {"t": SZ}},
                    headers={"Authorization": f"Bearer {token}"},
                ).json()
                page_ms.append((time.perf_counter() - t1) * 1000)
            if "errors" in page or len(page["data"]["outlets"]["edges"]) != 100:
                raise SystemExit(f"outlet page failed: {str(page)[:300]}")
            # Baseline in the same run: the stack itself (HTTP + GraphQL + a no-op field).
            trivial_ms = []
            for _ in range(PAGE_RUNS):
                t1 = time.perf_counter()
                client.post(f"{base}/graphql", json={"query": "{ __typename }"})
                trivial_ms.append((time.perf_counter() - t1) * 1000)
        grants, lines = asyncio.run(stored_counts(url))
    if not (result["count"] == grants == lines == args.outlets and result["state"] == "active"):
        raise SystemExit(f"expected {args.outlets} active grants and lines: {result}, {grants}, {lines}")
    print(
        f"bulkGrant of {SERVICE} to {args.outlets} outlets: {bulk_s:.2f} s over HTTP; "
        f"enforced by the server {enforced_s:.2f} s after the answer (setup {setup_s:.1f} s); "
        f"page of 100 outlets with tenant and grants: median {statistics.median(page_ms):.1f} ms",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "bulk_grant_100k_s" if args.outlets == 100_000 else "bulk_grant_s": round(bulk_s, 3),
                "outlets": args.outlets,
                "enforced_after_s": round(enforced_s, 3),
                "outlet_page_100_p50_ms": round(statistics.median(page_ms), 1),
                "trivial_query_p50_ms": round(statistics.median(trivial_ms), 2),
                "database": url.split(":", 1)[0],
                "python": sys.version.split()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
