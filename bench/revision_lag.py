"""How long another worker answers from an older policy, with and without `SSC-Revision` (issue 12).

    python bench/revision_lag.py [--rounds 300] [--database-url postgresql://...]

Two `ssc serve` workers on one database (a temporary SQLite file by default). Each round a province
administrator grants a pharmacy `password_change` on worker A (and revokes it on the next round);
right after the answer, the pharmacy asks worker B for `myPermissions`:

- with the answer's revision in `SSC-Revision`: B's first answer must already reflect the change
  (counted: stale answers, expected 0);
- without it: B is polled until its answer reflects the change; the time from A's answer to B's
  first up-to-date answer is the lag (PostgreSQL: LISTEN/NOTIFY wakes B; SQLite: B polls every
  0.1 s).

The last line is JSON with the lag's median, p99 and maximum in milliseconds and the stale count.
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

from app.ops.principals.credentials import create_principal_with_token  # noqa: E402
from app.ops.tenants.apply import apply_tenant_files  # noqa: E402
from app.store import migrate  # noqa: E402
from app.store.db import make_async_engine, make_session_factory  # noqa: E402
from bench.databases import DATABASE_URL_HELP, bench_database  # noqa: E402
from tests.api.partner_world import PHARMACY, new_key  # noqa: E402
from tests.procsrv import workers  # noqa: E402  (the same worker processes the tests start)

GD = "cn/440000"
GRANT = "mutation($i: GrantServiceInput!) { grantService(input: $i) { grant { id } revision } }"
REVOKE = "mutation($i: ChangeGrantInput!) { revokeGrant(input: $i) { revision } }"
PERMISSIONS = "{ myPermissions { service } }"
POLL_LIMIT_S = 5


async def prepare(url: str) -> tuple[str, str]:
    engine = make_async_engine(url)
    sessions = make_session_factory(engine)
    await apply_tenant_files(sessions, ROOT / "tenants")
    admin = await create_principal_with_token(
        sessions, tenant_path=GD, role="province_admin", name="bench.admin"
    )
    key = await new_key(sessions, PHARMACY)
    await engine.dispose()
    return admin.token, key


async def call(client: httpx.AsyncClient, base: str, headers: dict, query: str, variables=None) -> dict:
    response = await client.post(
        f"{base}/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    return response.json()


def holds(body: dict, granted: bool) -> bool:
    services = {p["service"] for p in body["data"]["myPermissions"]} if body.get("data") else set()
    return ("password_change" in services) == granted


async def run(url: str, key_file: Path, rounds: int) -> dict:
    token, key = await prepare(url)
    admin, partner = {"Authorization": f"Bearer {token}"}, {"X-Api-Key": key}
    lags, stale = [], 0
    with workers(2, url, key_file) as (a, b):
        async with httpx.AsyncClient(timeout=30) as client:
            grant_id = None
            for n in range(rounds):
                granting = grant_id is None
                if granting:
                    variables = {
                        "i": {
                            "tenant": GD,
                            "outletId": PHARMACY,
                            "service": "password_change",
                            "validFrom": "2026-01-01T00:00:00Z",
                            "documentRef": f"粤人社函〔2026〕{n}号",
                        }
                    }
                    answer = (await call(client, a, admin, GRANT, variables))["data"]["grantService"]
                    grant_id = answer["grant"]["id"]
                else:
                    variables = {"i": {"id": grant_id, "reason": "lag", "expectedVersion": 1}}
                    answer = (await call(client, a, admin, REVOKE, variables))["data"]["revokeGrant"]
                    grant_id = None
                answered = time.perf_counter()
                if n % 2:  # with the revision: the first answer must hold the change
                    body = await call(client, b, {**partner, "SSC-Revision": answer["revision"]}, PERMISSIONS)
                    stale += not holds(body, granting)
                    continue
                while not holds(await call(client, b, partner, PERMISSIONS), granting):
                    if time.perf_counter() - answered > POLL_LIMIT_S:
                        raise SystemExit("worker B never caught up")
                lags.append((time.perf_counter() - answered) * 1000)
    lags.sort()
    return {
        "database": url.split(":", 1)[0],
        "rounds_with_revision": rounds // 2,
        "stale_with_revision": stale,
        "rounds_without": len(lags),
        "lag_p50_ms": round(statistics.median(lags), 1),
        "lag_p99_ms": round(lags[min(len(lags) - 1, int(len(lags) * 0.99))], 1),
        "lag_max_ms": round(lags[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--database-url", help=DATABASE_URL_HELP)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_database(args.database_url, Path(tmp), "lag") as url,
    ):
        migrate.upgrade(url)
        result = asyncio.run(run(url, Path(tmp) / "keys.env", args.rounds))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
