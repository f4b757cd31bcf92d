"""The cap on a partner key's own rate limit (setting partner_rate_limit_max, 1000/second): limits are
compared in calls per second, a key above the cap is refused naming it, at the cap it is created."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.ops.errors import OpsError
from app.ops.partner_keys.keys import create_partner_key
from app.ops.principals.credentials import create_principal_with_token
from app.ops.tenants.apply import apply_tenant_files
from app.settings import Settings
from app.web import create_app
from tests.api.conftest import Api, error_code
from tests.api.partner_keys.key_helpers import CREATE, TH_OUTLET, key_state
from tests.audit_helpers import assert_only_denial
from tests.livesrv import serve


@pytest.mark.parametrize("limit", ["1001/second", "60001/minute", "3600001/hour"])
async def test_a_limit_above_the_cap_is_refused_and_nothing_is_written(api, sessions, limit):
    before = await key_state(sessions)
    body = await api.gql(CREATE, {"i": {"outletId": TH_OUTLET, "rateLimit": limit}}, who="gz_admin")
    assert error_code(body) == "BAD_INPUT", body
    assert body["errors"][0]["extensions"]["field"] == "rateLimit"
    assert "1000/second" in body["errors"][0]["message"]
    # Like every refusal of createPartnerKey: its denial event and nothing else.
    assert_only_denial(before, await key_state(sessions), "gz_admin")


@pytest.mark.parametrize("limit", ["1000/second", "60000/minute", "1000 per 1 second", "86400000/day"])
async def test_a_limit_at_the_cap_is_accepted(api, limit):
    body = await api.gql(CREATE, {"i": {"outletId": TH_OUTLET, "rateLimit": limit}}, who="gz_admin")
    assert "errors" not in body, body
    assert body["data"]["createPartnerKey"]["partnerKey"]["rateLimit"] == limit


async def test_an_app_applies_the_cap_of_its_own_settings(db_url, sessions, tenants_dir):
    await apply_tenant_files(sessions, tenants_dir)
    admin = await create_principal_with_token(
        sessions, tenant_path="cn/440000/440100", role="city_admin", name="gz.admin"
    )
    with serve(create_app(Settings(database_url=db_url, partner_rate_limit_max="5/second"))) as base:
        api = Api(base, {"gz_admin": admin.token})
        refused = await api.gql(
            CREATE, {"i": {"outletId": TH_OUTLET, "rateLimit": "10/second"}}, who="gz_admin"
        )
        accepted = await api.gql(
            CREATE, {"i": {"outletId": TH_OUTLET, "rateLimit": "5/second"}}, who="gz_admin"
        )
    assert error_code(refused) == "BAD_INPUT" and "5/second" in refused["errors"][0]["message"]
    assert "errors" not in accepted, accepted


async def test_a_caller_may_set_its_own_cap(sessions, tenants_dir):
    """What bench/partner.py does to measure without being limited."""
    await apply_tenant_files(sessions, tenants_dir)
    async with sessions() as session, session.begin():
        issued = await create_partner_key(
            session,
            TH_OUTLET,
            days=1,
            actor="bench",
            rate_limit="1000000/second",
            max_rate_limit="1000000/second",
        )
    assert issued.view.row.rate_limit == "1000000/second"
    with pytest.raises(OpsError) as refused:
        async with sessions() as session, session.begin():
            await create_partner_key(session, TH_OUTLET, days=1, actor="test", rate_limit="1000000/second")
    assert refused.value.code == "BAD_INPUT" and "1000/second" in refused.value.message


def test_the_command_line_applies_the_configured_cap(db_url, tmp_path, tenants_dir):
    env = {
        **os.environ,
        "SSC_DATABASE_URL": db_url,
        "SSC_KEY_FILE": str(tmp_path / "keys.env"),
        "SSC_PARTNER_RATE_LIMIT_MAX": "600/minute",
    }
    ssc = str(Path(sys.executable).parent / "ssc")

    def create(limit: str) -> subprocess.CompletedProcess:
        args = [ssc, "keys", "create", "--outlet", TH_OUTLET, "--rate-limit", limit]
        return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)

    assert subprocess.run([ssc, "tenants", "apply", str(tenants_dir)], env=env, timeout=60).returncode == 0
    refused = create("11/second")
    assert refused.returncode == 1 and "BAD_INPUT" in refused.stderr and "600/minute" in refused.stderr
    assert refused.stdout == ""
    accepted = create("10/second")
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.startswith("ssc_pk_")


PERMISSIONS = "{ partnerWhoAmI { outletId } }"


async def _burst(base: str, key: str, calls: int) -> list[str | None]:
    async with httpx.AsyncClient(timeout=20) as client:

        async def one() -> str | None:
            response = await client.post(
                f"{base}/graphql", json={"query": PERMISSIONS}, headers={"X-Api-Key": key}
            )
            return error_code(response.json())

        return list(await asyncio.gather(*(one() for _ in range(calls))))


async def test_a_long_period_does_not_buy_a_burst(db_url, sessions, tenants_dir):
    """The security review (issue 11, item 8): the cap refused 1001/second but accepted 1000000/day,
    which a moving window lets through in one burst (4,000 calls at the server's full speed). Every
    key is also held to the cap per second, whatever its longer period."""
    await apply_tenant_files(sessions, tenants_dir)
    async with sessions() as session, session.begin():
        daily = await create_partner_key(
            session, TH_OUTLET, days=1, actor="test", rate_limit="432000/day", max_rate_limit="5/second"
        )
    with serve(create_app(Settings(database_url=db_url, partner_rate_limit_max="5/second"))) as base:
        codes = await _burst(base, daily.key, 25)
    assert codes.count(None) == 5 and codes.count("RATE_LIMITED") == 20, codes


async def test_an_outlet_holds_a_bounded_number_of_live_keys(db_url, sessions, tenants_dir):
    await apply_tenant_files(sessions, tenants_dir)
    admin = await create_principal_with_token(
        sessions, tenant_path="cn/440000/440100", role="city_admin", name="gz.admin"
    )
    with serve(create_app(Settings(database_url=db_url, partner_max_keys_per_outlet=2))) as base:
        api = Api(base, {"gz_admin": admin.token})
        made = [await api.gql(CREATE, {"i": {"outletId": TH_OUTLET}}, who="gz_admin") for _ in range(2)]
        assert all("errors" not in body for body in made), made
        before = await key_state(sessions)
        third = await api.gql(CREATE, {"i": {"outletId": TH_OUTLET}}, who="gz_admin")
        assert error_code(third) == "CONFLICT" and third["errors"][0]["extensions"]["liveKeys"] == 2
        assert_only_denial(before, await key_state(sessions), "gz_admin")
        # A revoked key makes room again.
        prefix = made[0]["data"]["createPartnerKey"]["prefix"]
        revoke = "mutation($i: RevokePartnerKeyInput!) { revokePartnerKey(input: $i) { partnerKey { id } } }"
        assert "errors" not in await api.gql(
            revoke, {"i": {"prefix": prefix, "reason": "replaced"}}, who="gz_admin"
        )
        assert "errors" not in await api.gql(CREATE, {"i": {"outletId": TH_OUTLET}}, who="gz_admin")
