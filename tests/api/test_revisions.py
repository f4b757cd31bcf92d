"""Revisions across workers: a write on one worker, a read on another that names the write's revision.

Two `ssc serve` processes on one database. The administrator's grant and revocation go to worker A;
the pharmacy's partner calls go to worker B with the `SSC-Revision` header of the answer it is
acting on. B answers only once it has applied that revision: zero answers from an older policy.
Then the header's abuse cases: not a number, a revision nobody was given, and a worker that cannot
catch up in time (STALE).
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import httpx
import pytest

from app.ops.grants.changes import GrantRequest, grant_service
from app.ops.principals.credentials import create_principal_with_token
from app.ops.tenants.apply import apply_tenant_files
from app.settings import Settings, resolve_keys
from app.store.crypto import FieldCipher
from app.store.policy import last_change_id
from app.web import create_app
from tests.api.partner_world import GD, PHARMACY, TH, insert_cards, make_card, new_key
from tests.livesrv import serve
from tests.procsrv import workers

pytestmark = pytest.mark.slow

ROUNDS = 1000
GRANT = "mutation($i: GrantServiceInput!) { grantService(input: $i) { grant { id } revision } }"
REVOKE = "mutation($i: ChangeGrantInput!) { revokeGrant(input: $i) { revision } }"
STATUS = (
    "query($n: String!, $id: String!) {"
    ' cardStatus(cardNumber: $n, idNumber: $id, purpose: "password_change") { pinState } }'
)
WHO = "{ partnerWhoAmI { revision } }"


@pytest.fixture
async def two(db_url, sessions, tenants_dir, tmp_path):
    await apply_tenant_files(sessions, tenants_dir)
    key_file = tmp_path / "keys.env"
    card = make_card(random.Random(12), TH, 1)
    await insert_cards(sessions, [card], FieldCipher(*resolve_keys(Settings(key_file=key_file))))
    admin = await create_principal_with_token(
        sessions, tenant_path=GD, role="province_admin", name="gd.admin"
    )
    key = await new_key(sessions, PHARMACY)
    with workers(2, db_url, key_file) as bases:
        async with httpx.AsyncClient(timeout=30) as client:
            yield client, bases, {"Authorization": f"Bearer {admin.token}"}, {"X-Api-Key": key}, card


async def call(client, base: str, headers: dict, query: str, variables: dict | None = None, **more) -> dict:
    response = await client.post(
        f"{base}/graphql", json={"query": query, "variables": variables or {}}, headers={**headers, **more}
    )
    assert response.status_code == 200, response.text
    return response.json()


def grant_input(n: int) -> dict:
    return {
        "i": {
            "tenant": GD,
            "outletId": PHARMACY,
            "service": "password_change",
            "validFrom": "2026-01-01T00:00:00Z",
            "documentRef": f"粤人社函〔2026〕{n}号",
        }
    }


async def test_a_read_naming_the_revision_of_a_write_on_another_worker_sees_it(two):
    client, (a, b), admin, partner, card = two
    card_vars = {"n": card.card_number, "id": card.id_number}
    stale = []
    for n in range(ROUNDS):
        granted = (await call(client, a, admin, GRANT, grant_input(n)))["data"]["grantService"]
        allowed = await call(client, b, partner, STATUS, card_vars, **{"SSC-Revision": granted["revision"]})
        if allowed.get("errors"):
            stale.append((n, "after the grant", allowed["errors"][0]["extensions"]))
        change = {"i": {"id": granted["grant"]["id"], "reason": "检查", "expectedVersion": 1}}
        revoked = (await call(client, a, admin, REVOKE, change))["data"]["revokeGrant"]
        refused = await call(client, b, partner, STATUS, card_vars, **{"SSC-Revision": revoked["revision"]})
        if not refused.get("errors"):
            stale.append((n, "after the revocation", refused["data"]))
    assert stale == []
    # The worker says which revision it has applied: at least the last one it was asked for.
    applied = (await call(client, b, partner, WHO))["data"]["partnerWhoAmI"]["revision"]
    assert int(applied) >= int(revoked["revision"])


async def test_a_bad_or_unknown_revision_is_refused_and_says_why(two):
    client, (a, _), admin, partner, _ = two
    for bad in ("abc", "-1", "1" * 20, "12.5"):
        body = await call(client, a, partner, WHO, **{"SSC-Revision": bad})
        assert body["errors"][0]["extensions"] == {"code": "BAD_INPUT", "field": "SSC-Revision"}, bad
    applied = int((await call(client, a, admin, "{ me { revision } }"))["data"]["me"]["revision"])
    body = await call(client, a, partner, WHO, **{"SSC-Revision": str(applied + 1_000_000)})
    assert (
        body["errors"][0]["extensions"]["code"] == "BAD_INPUT"
        and "ever committed" in body["errors"][0]["message"]
    )
    body = await call(client, a, partner, WHO, **{"SSC-Revision": str(applied)})
    assert body["data"]["partnerWhoAmI"]["revision"] == str(applied)


async def test_a_worker_that_cannot_catch_up_in_time_answers_stale(db_url, sessions, tenants_dir):
    """Never a decision on an older policy: past the wait (here none at all), a coded STALE to retry."""
    await apply_tenant_files(sessions, tenants_dir)
    admin = await create_principal_with_token(
        sessions, tenant_path=GD, role="province_admin", name="gd.admin"
    )
    app = create_app(Settings(database_url=db_url, revision_wait_seconds=0))
    with serve(app) as base:
        # This worker stops tailing the log by itself (its tailer runs in the server's own loop).
        tailer = app.state.tailer
        server_loop = tailer._tasks[0].get_loop()
        asyncio.run_coroutine_threadsafe(tailer.stop(), server_loop).result(timeout=10)
        async with sessions() as session, session.begin():  # a change committed by another worker
            await grant_service(
                session,
                GrantRequest(
                    tenant=GD,
                    service="password_change",
                    valid_from=datetime(2026, 1, 1, tzinfo=UTC),
                    document_ref="粤人社函〔2026〕1号",
                    outlet_id=PHARMACY,
                ),
                actor="test",
            )
            revision = await last_change_id(session)
        async with httpx.AsyncClient(timeout=30) as client:
            headers = {"Authorization": f"Bearer {admin.token}"}
            body = await call(client, base, headers, "{ me { revision } }", **{"SSC-Revision": str(revision)})
            applied = app.state.tailer.revision
    assert applied < revision
    assert body["data"] is None and body["errors"][0]["extensions"] == {
        "code": "STALE",
        "revision": str(revision),
        "applied": str(applied),
        "retryAfter": 1,
    }
