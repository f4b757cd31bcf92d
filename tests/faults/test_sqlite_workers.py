"""Two `ssc serve` workers on one SQLite file under a mixed load of administrators' changes and partner
calls: SQLite has one writer at a time, and a caller must never see it — no `database is locked`, no
INTERNAL; every change acknowledged is in the file afterwards, with its audit event."""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlmodel import select

from app.ops.demo.partner import partner_quick_start
from app.ops.principals.credentials import create_principal_with_token
from app.ops.tenants.apply import apply_tenant_files
from app.settings import Settings, resolve_keys
from app.store.crypto import FieldCipher
from app.store.tables import AuditEvent, Outlet
from tests.procsrv import worker

SECONDS = 6
# On a machine busy with other tests, the load goes on past SECONDS until it is enough to say anything.
MAX_SECONDS = 30
MIN_OUTLETS, MIN_PARTNER_CALLS = 20, 100
NANSHAN = "cn/440000/440300/440305"  # Shenzhen grants by one person: a grant is in force at once
CREATE = """mutation($id: String!) { createOutlet(input: {id: $id, tenant: "cn/440000/440300/440305",
  kind: "hrss_hall", name: "压力测试网点"}) { outlet { id } } }"""
GRANT = """mutation($id: String!) { grantService(input: {tenant: "cn/440000/440300/440305", outletId: $id,
  service: "info_inquiry", validFrom: "2026-01-01T00:00:00Z", documentRef: "深人社函〔2026〕1号"}) {
  grant { id state } } }"""
STATUS = """query($c: String!, $i: String!, $p: String!) {
  cardStatus(cardNumber: $c, idNumber: $i, purpose: $p) { status } }"""


@pytest.fixture
async def world(db_url, sessions, tenants_dir, tmp_path):
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite's single writer is what this test is about; PostgreSQL has its own fault tests")
    key_file = tmp_path / "keys.env"
    await apply_tenant_files(sessions, tenants_dir)
    admin = await create_principal_with_token(sessions, tenant_path="cn/440000/440300", role="city_admin")
    cipher = FieldCipher(*resolve_keys(Settings(database_url=db_url, key_file=str(key_file))))
    started = await partner_quick_start(sessions, cipher, "gz-hall-city")
    return db_url, key_file, admin.token, started


async def test_two_workers_on_one_file_never_show_a_locked_database(world, sessions):
    db_url, key_file, token, started = world
    card = started.card
    numbers = itertools.count()
    problems: list[str] = []
    created: list[str] = []
    answered_partner_calls: list[int] = []
    with worker(
        db_url,
        key_file,
        "--workers",
        "2",
        partner_rate_limit="100000/second",
        partner_rate_limit_max="100000/second",
    ) as base:
        began = time.monotonic()

        def going() -> bool:
            elapsed = time.monotonic() - began
            enough = len(created) >= MIN_OUTLETS and len(answered_partner_calls) >= MIN_PARTNER_CALLS
            return elapsed < SECONDS or (not enough and elapsed < MAX_SECONDS)

        def answer(response: httpx.Response) -> dict:
            body = response.json()
            for error in body.get("errors") or ():
                code = (error.get("extensions") or {}).get("code")
                if code in (None, "INTERNAL", "UNAVAILABLE") or "locked" in error.get("message", ""):
                    problems.append(f"{code}: {error.get('message')}")
            return body

        def administrator() -> None:
            with httpx.Client(base_url=base, timeout=30, headers={"authorization": f"Bearer {token}"}) as c:
                while going():
                    outlet_id = f"sz-load-{next(numbers)}"
                    made = answer(c.post("/graphql", json={"query": CREATE, "variables": {"id": outlet_id}}))
                    if made.get("data") and made["data"]["createOutlet"]:
                        created.append(outlet_id)
                        answer(c.post("/graphql", json={"query": GRANT, "variables": {"id": outlet_id}}))

        def partner() -> None:
            asked = {"c": card.card_number, "i": card.id_number, "p": started.service}
            with httpx.Client(base_url=base, timeout=30, headers={"x-api-key": started.key.key}) as c:
                while going():
                    answer(c.post("/graphql", json={"query": STATUS, "variables": asked}))
                    answered_partner_calls.append(1)

        with ThreadPoolExecutor(max_workers=8) as pool:
            for future in [pool.submit(administrator) for _ in range(3)] + [
                pool.submit(partner) for _ in range(5)
            ]:
                future.result()
    assert not problems, f"{len(problems)} calls saw the database: {sorted(set(problems))[:5]}"
    partner_calls, seconds = len(answered_partner_calls), time.monotonic() - began
    print(f"{len(created)} outlets created and granted, {partner_calls} partner calls in {seconds:.0f} s")
    assert len(created) >= MIN_OUTLETS and partner_calls >= MIN_PARTNER_CALLS, (
        "too little load to say anything"
    )
    async with sessions() as session:
        stored = set((await session.exec(select(Outlet.id).where(Outlet.id.like("sz-load-%")))).all())
        creations = select(AuditEvent.target_id).where(AuditEvent.action == "outlet.create")
        audited = set((await session.exec(creations)).all())
    assert set(created) <= stored, f"{len(set(created) - stored)} acknowledged outlets are missing"
    assert set(created) <= audited, "an acknowledged outlet has no audit event"
