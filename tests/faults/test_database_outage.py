"""The database goes away under a running worker and comes back (a proxy on 127.0.0.1 between them
cuts every connection, then lets them through again): meanwhile every call is answered at once with
the coded UNAVAILABLE (never INTERNAL, never a hang) and /readyz says so; afterwards the worker serves
again without a restart, administrators' changes and partner calls alike."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy.engine import make_url

from app.ops.demo.partner import partner_quick_start
from app.ops.principals.credentials import create_principal_with_token
from app.ops.tenants.apply import apply_tenant_files
from app.settings import Settings, resolve_keys
from app.store.crypto import FieldCipher
from app.store.db import make_async_engine, make_session_factory
from app.web import create_app
from tests.faults.tcp_proxy import CuttableProxy
from tests.livesrv import serve

STATUS = """query($c: String!, $i: String!, $p: String!) {
  cardStatus(cardNumber: $c, idNumber: $i, purpose: $p) { status } }"""
CREATE = """mutation($id: String!) { createOutlet(input: {id: $id, tenant: "cn/440000/440300/440305",
  kind: "hrss_hall", name: "断网测试网点"}) { outlet { id } } }"""


def _code(response: httpx.Response) -> str | None:
    errors = response.json().get("errors") or ()
    return (errors[0].get("extensions") or {}).get("code") if errors else None


@pytest.fixture
async def world(pg_url, tmp_path, tenants_dir):
    engine = make_async_engine(pg_url)
    sessions = make_session_factory(engine)
    settings = Settings(database_url=pg_url, key_file=str(tmp_path / "keys.env"))
    try:
        await apply_tenant_files(sessions, tenants_dir)
        admin = await create_principal_with_token(sessions, tenant_path="cn/440000/440300", role="city_admin")
        started = await partner_quick_start(sessions, FieldCipher(*resolve_keys(settings)), "gz-hall-city")
    finally:
        await engine.dispose()
    return pg_url, tmp_path, admin.token, started


def test_calls_are_unavailable_while_the_database_is_away_and_served_again_after(world):
    pg_url, tmp_path, token, started = world
    url = make_url(pg_url)
    with CuttableProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        settings = Settings(
            database_url=proxied,
            key_file=str(tmp_path / "keys.env"),
            audit_checkpoint_seconds=0,
            # A key verified a moment ago is trusted without the database: make every call need it.
            partner_key_cache_seconds=0,
        )
        card = started.card
        asked = {"c": card.card_number, "i": card.id_number, "p": started.service}
        with serve(create_app(settings)) as base, httpx.Client(base_url=base, timeout=15) as client:

            def admin_call(n: int) -> httpx.Response:
                return client.post(
                    "/graphql",
                    json={"query": CREATE, "variables": {"id": f"sz-outage-{n}"}},
                    headers={"authorization": f"Bearer {token}"},
                )

            def partner_call() -> httpx.Response:
                return client.post(
                    "/graphql",
                    json={"query": STATUS, "variables": asked},
                    headers={"x-api-key": started.key.key},
                )

            assert _code(admin_call(0)) is None and _code(partner_call()) is None

            proxy.cut()
            away_until = time.monotonic() + 3
            codes, n = set(), 1
            while time.monotonic() < away_until:
                started_at = time.monotonic()
                codes |= {_code(admin_call(n)), _code(partner_call())}
                assert time.monotonic() - started_at < 10, "a call hung while the database was away"
                n += 1
            assert codes == {"UNAVAILABLE"}, codes
            assert client.get("/readyz").status_code == 503
            report = client.get(
                "/reports/audit-events",
                params={"format": "csv"},
                headers={"authorization": f"Bearer {token}"},
            )
            assert report.status_code == 503 and _code(report) == "UNAVAILABLE"

            proxy.restore()
            deadline, in_a_row = time.monotonic() + 20, 0
            while in_a_row < 10:
                assert time.monotonic() < deadline, (
                    "the worker did not serve again after the database came back"
                )
                ok = _code(admin_call(n)) is None and _code(partner_call()) is None
                in_a_row = in_a_row + 1 if ok else 0
                n += 1
                time.sleep(0 if ok else 0.2)
            assert client.get("/readyz").status_code == 200
