"""Partner keys over HTTP: administrators create and revoke them within their own departments, a key
works as its outlet until it is revoked, expires or its outlet closes, and never appears in storage
or the audit trail."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import update
from sqlmodel import select

from app.ops.errors import OpsError
from app.ops.partner_keys.keys import authenticate_partner, create_partner_key
from app.ops.partner_keys.rate_limit import NAMESPACE, parse_limit
from app.ops.tenants.apply import apply_tenant_files
from app.settings import Settings, get_settings
from app.store.point_reads import PointReader
from app.store.tables import AuditEvent, PartnerKey
from app.web import create_app
from tests.api.conftest import Api, error_code
from tests.api.partner_keys.key_helpers import CREATE, REVOKE, TH, TH_OUTLET, key_state
from tests.audit_helpers import assert_only_denial
from tests.livesrv import serve

REDIS_URL = "redis://127.0.0.1:6379"

CACHE_S = get_settings().partner_key_cache_seconds
WHOAMI = "{ partnerWhoAmI { outletId kind tenantPath bankCode rateLimit } }"
CLOSE = "mutation($i: CloseOutletInput!) { closeOutlet(input: $i) { revokedPartnerKeyCount } }"


async def partner_call(api, key: str | None, query: str = WHOAMI) -> dict:
    headers = {"X-Api-Key": key} if key is not None else {}
    async with httpx.AsyncClient(timeout=20) as client:
        response = await client.post(f"{api.base}/graphql", json={"query": query}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def new_key(api, who: str = "gz_admin", **fields) -> dict:
    body = await api.gql(CREATE, {"i": {"outletId": TH_OUTLET, **fields}}, who=who)
    assert "errors" not in body, body
    return body["data"]["createPartnerKey"]


def added_events(before: dict, after: dict) -> list[tuple]:
    assert after["events"][: len(before["events"])] == before["events"]
    return after["events"][len(before["events"]) :]


# --- creating and using a key ---------------------------------------------------------------------


async def test_a_new_key_is_shown_once_and_acts_as_its_outlet(api, sessions):
    created = await new_key(api, who="th_admin", days=30, rateLimit="20/second")
    key, shown = created["key"], created["partnerKey"]
    assert key.startswith("ssc_pk_") and created["prefix"] == key[:15] == shown["prefix"]
    assert shown == {
        "id": shown["id"],
        "outletId": TH_OUTLET,
        "tenantPath": TH,
        "prefix": key[:15],
        "rateLimit": "20/second",
        "status": "active",
        "revokedAt": None,
    }
    who = await partner_call(api, key)
    assert who == {
        "data": {
            "partnerWhoAmI": {
                "outletId": TH_OUTLET,
                "kind": "designated_pharmacy",
                "tenantPath": TH,
                "bankCode": None,
                "rateLimit": "20/second",
            }
        }
    }
    async with sessions() as session:
        stored = (await session.exec(select(PartnerKey))).one()
        events = (
            await session.exec(select(AuditEvent).where(AuditEvent.action == "partner_key.create"))
        ).all()
    assert stored.created_by is not None and key not in stored.model_dump_json()
    assert len(events) == 1 and events[0].actor == "principal:th.admin" and events[0].tenant == TH
    assert key[:15] in events[0].detail and key not in events[0].detail


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"days": 0}, "days"), ({"days": 732}, "days"), ({"rateLimit": "lots"}, "rateLimit")],
)
async def test_bad_key_input_is_refused_naming_the_field(api, sessions, fields, field):
    before = await key_state(sessions)
    body = await api.gql(CREATE, {"i": {"outletId": TH_OUTLET, **fields}}, who="gz_admin")
    assert error_code(body) == "BAD_INPUT" and body["errors"][0]["extensions"]["field"] == field
    assert_only_denial(before, await key_state(sessions), "gz_admin")


async def test_missing_unknown_and_malformed_keys_are_unauthenticated(api):
    for key in (None, "", "ssc_pk_not-a-real-key", "Bearer something"):
        assert error_code(await partner_call(api, key)) == "UNAUTHENTICATED"


# --- who may administer keys ----------------------------------------------------------------------


@pytest.mark.parametrize("who", ["sz_admin", "gz_auditor", "gz_approver", None])
async def test_create_outside_ones_reach_is_refused_and_changes_nothing_but_the_denial(api, sessions, who):
    before = await key_state(sessions)
    body = await api.gql(CREATE, {"i": {"outletId": TH_OUTLET}}, who=who)
    assert error_code(body) == ("UNAUTHENTICATED" if who is None else "FORBIDDEN")
    added = added_events(before, after := await key_state(sessions))
    assert after["keys"] == before["keys"]
    if who is None:
        assert added == []
    else:
        assert [(a[2], a[3]) for a in added] == [("deny", f"principal:{who.replace('_', '.')}")]


async def test_a_child_department_cannot_reach_up_to_its_parents_outlet(api, sessions):
    before = await key_state(sessions)
    body = await api.gql(CREATE, {"i": {"outletId": "gz-hall-city"}}, who="th_admin")
    assert error_code(body) == "FORBIDDEN"
    added = added_events(before, await key_state(sessions))
    assert len(added) == 1 and added[0][2] == "deny"


async def test_unknown_outlet_or_key_looks_like_a_foreign_one(api, sessions):
    """FORBIDDEN whether or not it exists; only a national reach would learn NOT_FOUND."""
    assert (
        error_code(await api.gql(CREATE, {"i": {"outletId": "no-such-outlet"}}, who="gd_admin"))
        == "FORBIDDEN"
    )
    unknown = {"id": 999_999, "reason": "probe"}
    assert error_code(await api.gql(REVOKE, {"i": unknown}, who="gz_admin")) == "FORBIDDEN"


@pytest.mark.parametrize("who", ["sz_admin", "th_admin", "gz_auditor", None])
async def test_revoke_outside_ones_reach_is_refused(api, sessions, who):
    created = await new_key(api, who="gz_admin")
    # The key belongs to a Tianhe outlet: th_admin may revoke it, so use a Guangzhou city outlet here.
    body = await api.gql(CREATE, {"i": {"outletId": "gz-hall-city"}}, who="gz_admin")
    city_key = body["data"]["createPartnerKey"]
    target = city_key if who == "th_admin" else created
    before = await key_state(sessions)
    body = await api.gql(REVOKE, {"i": {"id": target["partnerKey"]["id"], "reason": "x"}}, who=who)
    assert error_code(body) == ("UNAUTHENTICATED" if who is None else "FORBIDDEN")
    after = await key_state(sessions)
    assert after["keys"] == before["keys"]
    assert len(added_events(before, after)) == (0 if who is None else 1)
    assert "errors" not in await partner_call(api, target["key"])


async def test_revoke_by_id_or_prefix_input_rules(api):
    created = await new_key(api)
    for given, field in (
        ({"reason": "x"}, "id"),
        ({"id": created["partnerKey"]["id"], "prefix": created["prefix"], "reason": "x"}, "id"),
        ({"prefix": "ssc_pk_short", "reason": "x"}, "prefix"),
        ({"id": created["partnerKey"]["id"], "reason": "  "}, "reason"),
    ):
        body = await api.gql(REVOKE, {"i": given}, who="gz_admin")
        assert error_code(body) == "BAD_INPUT" and body["errors"][0]["extensions"]["field"] == field, given


# --- revocation reaches every call ----------------------------------------------------------------


async def test_a_revoked_key_stops_working_at_once(api, sessions):
    created = await new_key(api)
    assert "errors" not in await partner_call(api, created["key"])  # now trusted by this worker's cache
    body = await api.gql(REVOKE, {"i": {"prefix": created["prefix"], "reason": "leaked"}}, who="th_admin")
    assert body["data"]["revokePartnerKey"]["partnerKey"]["status"] == "revoked"
    assert error_code(await partner_call(api, created["key"])) == "UNAUTHENTICATED"
    again = await api.gql(REVOKE, {"i": {"prefix": created["prefix"], "reason": "twice"}}, who="th_admin")
    assert error_code(again) == "CONFLICT"
    async with sessions() as session:
        event = (
            await session.exec(
                select(AuditEvent).where(
                    AuditEvent.action == "partner_key.revoke", AuditEvent.decision.is_(None)
                )
            )
        ).one()
    assert event.tenant == TH and "leaked" in event.detail and created["prefix"] in event.detail
    assert created["key"] not in event.detail


async def test_a_key_of_a_closed_outlet_stops_working_at_once(api, sessions):
    created = await new_key(api)
    assert "errors" not in await partner_call(api, created["key"])
    # Outlets declared in tenant files are closed there; close one registered through the API.
    body = await api.gql(
        "mutation($i: CreateOutletInput!) { createOutlet(input: $i) { outlet { version } } }",
        {"i": {"id": "th-api-hall", "tenant": TH, "kind": "hrss_hall", "name": "天河临时厅"}},
        who="gz_admin",
    )
    version = body["data"]["createOutlet"]["outlet"]["version"]
    hall = await api.gql(CREATE, {"i": {"outletId": "th-api-hall"}}, who="gz_admin")
    hall_key = hall["data"]["createPartnerKey"]["key"]
    assert "errors" not in await partner_call(api, hall_key)
    closed = await api.gql(
        CLOSE, {"i": {"id": "th-api-hall", "reason": "moved", "expectedVersion": version}}, who="gz_admin"
    )
    assert closed["data"]["closeOutlet"]["revokedPartnerKeyCount"] == 1
    # The closing worker drops the keys from its cache at once (other workers within CACHE_S).
    assert error_code(await partner_call(api, hall_key)) == "UNAUTHENTICATED"
    assert "errors" not in await partner_call(api, created["key"])


async def test_another_workers_revocation_reaches_this_one_within_the_cache_time(api, sessions):
    """A revocation committed elsewhere (here: straight in the database) is honoured once the cache
    time has passed; until then the worker answers from its cache, without a query."""
    created = await new_key(api)
    key, key_id = created["key"], created["partnerKey"]["id"]
    reader = PointReader(sessions.kw["bind"])
    try:
        assert (await authenticate_partner(reader, key)).key_id == key_id
        async with sessions() as session, session.begin():
            await session.exec(
                update(PartnerKey).where(PartnerKey.id == key_id).values(revoked_at=datetime.now(UTC))
            )
        assert (await authenticate_partner(reader, key)).key_id == key_id  # still trusted from the cache
        await asyncio.sleep(CACHE_S)
        with pytest.raises(OpsError) as refused:
            await authenticate_partner(reader, key)
    finally:
        await reader.close()
    assert refused.value.code == "UNAUTHENTICATED"


async def test_an_app_trusts_a_verified_key_for_the_time_its_own_settings_say(db_url, sessions, tenants_dir):
    """With no cache time a key revoked behind the worker's back is refused at the next call."""
    await apply_tenant_files(sessions, tenants_dir)
    async with sessions() as session, session.begin():
        issued = await create_partner_key(session, TH_OUTLET, days=1, actor="test")
    with serve(create_app(Settings(database_url=db_url, partner_key_cache_seconds=0))) as base:
        assert "errors" not in await partner_call(Api(base, {}), issued.key)
        async with sessions() as session, session.begin():
            await session.exec(
                update(PartnerKey).where(PartnerKey.id == issued.key_id).values(revoked_at=datetime.now(UTC))
            )
        assert error_code(await partner_call(Api(base, {}), issued.key)) == "UNAUTHENTICATED"


async def test_an_expired_key_is_refused_and_never_trusted_past_its_expiry(api, sessions):
    async with sessions() as session, session.begin():
        issued = await create_partner_key(session, TH_OUTLET, days=1, actor="test")
    assert "errors" not in await partner_call(api, issued.key)
    async with sessions() as session, session.begin():
        soon = datetime.now(UTC) + timedelta(seconds=CACHE_S + 0.4)
        await session.exec(update(PartnerKey).where(PartnerKey.id == issued.key_id).values(expires_at=soon))
    await asyncio.sleep(CACHE_S)  # the earlier call's cache entry lapses; the key has ~0.4 s left
    assert "errors" not in await partner_call(api, issued.key)  # trusted now until its expiry, not longer
    await asyncio.sleep(0.5)
    assert error_code(await partner_call(api, issued.key)) == "UNAUTHENTICATED"


# --- rate limits ----------------------------------------------------------------------------------


async def test_a_key_past_its_rate_limit_is_told_when_to_retry(api):
    created = await new_key(api, rateLimit="3/minute")
    other = await new_key(api, rateLimit="3/minute")
    for _ in range(3):
        assert "errors" not in await partner_call(api, created["key"])
    refused = await partner_call(api, created["key"])
    assert error_code(refused) == "RATE_LIMITED"
    assert 1 <= refused["errors"][0]["extensions"]["retryAfter"] <= 60
    assert "errors" not in await partner_call(api, other["key"])  # each key has its own count


async def test_a_worker_counting_in_redis_shares_the_count_and_closes_its_connections(
    db_url, sessions, tenants_dir
):
    """Two app instances stand for two workers on one Redis: the limit holds across them, and each
    closes its connections when it stops."""
    await apply_tenant_files(sessions, tenants_dir)
    async with sessions() as session, session.begin():
        issued = await create_partner_key(session, TH_OUTLET, days=1, actor="test", rate_limit="3/minute")
    settings = Settings(database_url=db_url, rate_limit_storage=REDIS_URL)
    redis = aioredis.from_url(REDIS_URL)

    async def connections() -> int:
        return sum(c.get("name") == NAMESPACE for c in await redis.client_list())

    async def forget_the_count() -> None:  # key ids repeat from one test database to the next
        count_key = parse_limit("3/minute").key_for(str(issued.key_id))
        stored = [k async for k in redis.scan_iter(match=f"{NAMESPACE}*{count_key}")]
        if stored:
            await redis.delete(*stored)

    try:
        await forget_the_count()
        before = await connections()
        with serve(create_app(settings)) as first, serve(create_app(settings)) as second:
            answers = [await partner_call(Api(base, {}), issued.key) for base in (first, second) * 2]
            assert await connections() > before
        assert [error_code(a) for a in answers] == [None, None, None, "RATE_LIMITED"]
        assert await connections() == before
    finally:
        await forget_the_count()
        await redis.aclose()


# --- the command line -----------------------------------------------------------------------------


def test_cli_creates_and_revokes_a_key(db_url, tmp_path, tenants_dir):
    env = {**os.environ, "SSC_DATABASE_URL": db_url, "SSC_KEY_FILE": str(tmp_path / "keys.env")}
    ssc = str(Path(sys.executable).parent / "ssc")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([ssc, *args], env=env, capture_output=True, text=True, timeout=60)

    assert run("tenants", "apply", str(tenants_dir)).returncode == 0
    created = run("keys", "create", "--outlet", TH_OUTLET, "--days", "5")
    assert created.returncode == 0, created.stderr
    prefix = created.stdout.strip()[:15]
    revoked = run("keys", "revoke", "--prefix", prefix, "--reason", "rotated")
    assert revoked.returncode == 0 and prefix in revoked.stderr, revoked.stderr
    again = run("keys", "revoke", "--prefix", prefix, "--reason", "rotated")
    assert again.returncode == 1 and "CONFLICT" in again.stderr
    assert run("keys", "revoke", "--reason", "x").returncode == 1
