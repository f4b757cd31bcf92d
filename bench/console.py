"""Console pages benchmark (issue 15): each page's time with 100,000 outlets in the tenant.

    python bench/console.py [--outlets 100000] [--samples 21]

Builds a fresh SQLite database with the demo tree and N synthetic outlets (`ssc demo generate`), a
province administrator with a console password whose second factor is enrolled, and a logged-in
session; starts the real app under uvicorn on 127.0.0.1 and times, from a client on the same machine,
each page as the browser asks for it (GET with the session cookie, to the last byte): every page of
the console's top bar, an outlet's page, the forms, the compliance pages, and for the outlets list a
search, a kind filter and a page deep in the list (keyset). A Guangzhou grant (a proposal) to a kind
and one to an outlet give the grant pages something to show. /healthz in the same run is the
baseline (what any request costs). The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pyotp
import uvicorn
from sqlmodel import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.ops.auth import authenticate  # noqa: E402
from app.ops.demo.generate import generate  # noqa: E402
from app.ops.grants.admin import create_grant  # noqa: E402
from app.ops.grants.changes import GrantRequest  # noqa: E402
from app.ops.principals.credentials import create_principal_with_token  # noqa: E402
from app.ops.principals.logins import enrolment, password_step, second_factor_step, set_password  # noqa: E402
from app.ops.tenants.apply import apply_tenant_files  # noqa: E402
from app.settings import Settings, resolve_keys  # noqa: E402
from app.store import migrate  # noqa: E402
from app.store.crypto import FieldCipher  # noqa: E402
from app.store.db import make_async_engine, make_session_factory  # noqa: E402
from app.store.tables import Outlet  # noqa: E402
from app.web import create_app  # noqa: E402

PASSWORD = "Benchmark-2026-ok"
PAGES = {
    "overview": "/console/",
    "outlets_first": "/console/outlets",
    "outlets_search": "/console/outlets?search=demo-00500",
    # Two characters (a trigram index cannot serve them): one found everywhere, one found nowhere.
    "outlets_search_short_common": "/console/outlets?search=%E5%BA%97",
    "outlets_search_short_none": "/console/outlets?search=zq",
    "outlets_kind": "/console/outlets?kind=bank_outlet",
    "outlets_deep": "/console/outlets?after=demo-0090000",
    "outlet": "/console/outlets/{outlet}",
    "outlet_new": "/console/outlets/new",
    "grants": "/console/grants",
    "grant": "/console/grants/1",
    "grant_new": "/console/grants/new?outlet={outlet}",
    "approvals": "/console/approvals",
    "ceilings": "/console/ceilings?tenant=cn/440000",
    "people": "/console/people",
    "audit": "/console/audit",
    "who_can": "/console/who-can?tenant=cn/440000/440100&service=password_change",
    "what_can": "/console/what-can?outlet={outlet}",
    "grant_history": "/console/grant-history",
    "anomalies": "/console/anomalies",
}


async def prepare(settings: Settings, outlets: int) -> tuple[str, str]:
    """The database; a logged-in session's cookie value and the outlet whose pages are timed."""
    engine = make_async_engine(settings.database_url)
    sessions = make_session_factory(engine)
    cipher = FieldCipher(*resolve_keys(settings))
    await apply_tenant_files(sessions, ROOT / "tenants")
    await generate(sessions, cipher, cards=0, outlets=outlets, seed=1)
    await create_principal_with_token(
        sessions, tenant_path="cn/440000", role="province_admin", name="gd.bench"
    )
    await set_password(sessions, "gd.bench", PASSWORD)
    outlet = await _grants(sessions)
    step = await password_step(sessions, settings, "gd.bench", PASSWORD, "127.0.0.1")
    secret, _ = await enrolment(sessions, cipher, step.token)
    await second_factor_step(sessions, settings, cipher, step.token, pyotp.TOTP(secret).now(), "127.0.0.1")
    await engine.dispose()
    return step.token, outlet


async def _grants(sessions) -> str:
    """Two grants made the way the API makes them, by the province: to every pharmacy, and to one
    synthetic bank outlet in the middle of the list, whose code is returned (its pages are timed)."""
    issued = await create_principal_with_token(
        sessions, tenant_path="cn/440000", role="province_admin", name="gd.granter"
    )
    async with sessions() as session:
        actor = await authenticate(session, issued.token)
        outlet = (
            await session.exec(
                select(Outlet.id)
                .where(Outlet.kind == "bank_outlet", Outlet.id >= "demo-0001000")
                .order_by(Outlet.id)
                .limit(1)
            )
        ).one()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    targets = (
        ("activation", {"outlet_kind": "designated_pharmacy"}),
        ("info_inquiry", {"outlet_id": outlet}),
    )
    for service, target in targets:
        request = GrantRequest(
            tenant="cn/440000", service=service, valid_from=start, document_ref="基准测试", **target
        )
        await create_grant(sessions, actor, request)
    return outlet


def measure(settings: Settings, cookie: str, outlet: str, samples: int) -> dict:
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.05)
    base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    found: dict[str, float] = {}
    try:
        with httpx.Client(base_url=base, cookies={"ssc_session": cookie}, timeout=60) as client:
            for name, path in {"baseline_healthz": "/healthz", **PAGES}.items():
                path = path.format(outlet=outlet)
                times = []
                for _ in range(samples + 1):  # the first warms the page's template and queries
                    t0 = time.perf_counter()
                    response = client.get(path)
                    times.append(time.perf_counter() - t0)
                    if response.status_code != 200 or (path != "/healthz" and "<h1>" not in response.text):
                        raise RuntimeError(f"{path}: HTTP {response.status_code}")
                found[f"{name}_p50_ms"] = round(statistics.median(times[1:]) * 1000, 1)
    finally:
        server.should_exit = True
        thread.join(timeout=60)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outlets", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=21)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ssc-bench-") as tmp:
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'console.db'}",
            key_file=str(Path(tmp) / "keys.env"),
            audit_checkpoint_seconds=0,
            console_idle_minutes=60,
        )
        migrate.upgrade(settings.database_url)
        t0 = time.perf_counter()
        cookie, outlet = asyncio.run(prepare(settings, args.outlets))
        print(f"built {args.outlets:,} outlets in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        found = measure(settings, cookie, outlet, args.samples)
    print(f"pages: {found}", file=sys.stderr)
    print(
        json.dumps(
            {
                "machine": f"{platform.node()} {platform.machine()} {platform.python_version()}",
                "date": datetime.now(UTC).date().isoformat(),
                "outlets": args.outlets,
                **found,
            }
        )
    )


if __name__ == "__main__":
    main()
