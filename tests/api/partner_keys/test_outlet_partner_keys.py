"""Outlet.partnerKeys: those who may read the outlet see its keys (never the keys themselves), newest
first with their status; nobody else does; a page of outlets loads all their keys in one query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from types import SimpleNamespace

import pytest
from sqlalchemy import insert, update
from sqlmodel import select

from app.graphql.context import Context
from app.graphql.types.outlet import Outlet as OutletType
from app.ops.auth import authenticate
from app.ops.outlets.views import OutletView
from app.ops.partner_keys.admin import may_read_keys
from app.store.crypto import secret_hash
from app.store.tables import Outlet, PartnerKey, Tenant
from tests.api.conftest import error_code
from tests.api.outlet_helpers import GZ, recorded_statements
from tests.api.partner_keys.key_helpers import CREATE, REVOKE, TH, TH_OUTLET

KEYS = (
    "query($id: String!) { outlet(id: $id) { id partnerKeys { id outletId tenantPath prefix rateLimit"
    " status expiresAt revokedAt createdAt } } }"
)


async def create(api, outlet: str = TH_OUTLET, **fields) -> dict:
    body = await api.gql(CREATE, {"i": {"outletId": outlet, **fields}}, who="gz_admin")
    assert "errors" not in body, body
    return body["data"]["createPartnerKey"]


@pytest.fixture
async def three_keys(api, sessions) -> list[dict]:
    """An expired, a revoked and an active key of one Tianhe outlet (oldest first), and one key of a
    Guangzhou outlet that must not show up among them."""
    expired, revoked, active = [await create(api, rateLimit=f"{n}/second") for n in (10, 20, 30)]
    async with sessions() as session, session.begin():
        await session.exec(
            update(PartnerKey)
            .where(PartnerKey.id == expired["partnerKey"]["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    body = await api.gql(
        REVOKE, {"i": {"id": revoked["partnerKey"]["id"], "reason": "rotated"}}, who="gz_admin"
    )
    assert "errors" not in body, body
    await create(api, outlet="gz-hall-city")
    return [expired, revoked, active]


@pytest.mark.parametrize("who", ["th_admin", "gz_admin", "gd_admin", "gz_auditor"])
async def test_readers_of_the_outlet_see_its_keys_newest_first_with_their_status(api, three_keys, who):
    expired, revoked, active = three_keys
    body = await api.gql(KEYS, {"id": TH_OUTLET}, who=who)
    assert "errors" not in body, body
    shown = body["data"]["outlet"]["partnerKeys"]
    assert [(k["id"], k["status"], k["rateLimit"]) for k in shown] == [
        (active["partnerKey"]["id"], "active", "30/second"),
        (revoked["partnerKey"]["id"], "revoked", "20/second"),
        (expired["partnerKey"]["id"], "expired", "10/second"),
    ]
    assert all(k["outletId"] == TH_OUTLET and k["tenantPath"] == TH for k in shown)
    assert [k["prefix"] for k in shown] == [c["prefix"] for c in (active, revoked, expired)]
    assert shown[1]["revokedAt"] is not None and shown[0]["revokedAt"] is None


async def test_no_key_material_is_ever_in_the_answer(api, three_keys):
    response = await api.post(KEYS, {"id": TH_OUTLET}, who="th_admin")
    assert response.status_code == 200 and len(response.json()["data"]["outlet"]["partnerKeys"]) == 3
    for created in three_keys:
        assert created["key"] not in response.text and secret_hash(created["key"]) not in response.text
    for field in ("key", "keyHash"):
        asking = await api.gql(
            f'{{ outlet(id: "{TH_OUTLET}") {{ partnerKeys {{ {field} }} }} }}', who="th_admin"
        )
        assert asking["data"] is None  # no such field: refused before anything runs
        assert f"Cannot query field '{field}' on type 'PartnerKey'" in asking["errors"][0]["message"]


async def test_others_get_nothing(api, three_keys, sessions):
    """A sibling department's administrator cannot reach the outlet at all (null with FORBIDDEN); the
    field itself also answers null to anyone who may not read the outlet, however they reached it."""
    body = await api.gql(KEYS, {"id": TH_OUTLET}, who="sz_admin")
    assert error_code(body) == "FORBIDDEN" and body["data"] == {"outlet": None}
    assert all(k["prefix"] not in repr(body) for k in three_keys)
    async with sessions() as session:
        actors = {who: await authenticate(session, api.tokens[who]) for who in api.tokens}
        row = await session.get(Outlet, TH_OUTLET)
    readers = {who for who, actor in actors.items() if may_read_keys(actor, TH)}
    assert readers == {"gd_admin", "gz_admin", "th_admin", "gz_operator", "gz_approver", "gz_auditor"}
    assert not may_read_keys(actors["th_admin"], GZ)  # never upwards
    # The resolver on its own, as if another path had led the sibling to the outlet.
    [field] = [f for f in OutletType.__strawberry_definition__.fields if f.python_name == "partner_keys"]
    outlet = OutletType.from_view(OutletView(row, TH))

    async def resolve(who: str):
        async def actor():
            return actors[who]

        context = SimpleNamespace(actor=actor, sessions=sessions, request_id=None)
        context.read = partial(Context.read, context)  # the real read, as the caller `who`
        return await field.base_resolver.wrapped_func(outlet, SimpleNamespace(context=context))

    assert await resolve("sz_admin") is None
    assert [k.prefix for k in await resolve("th_admin")] == [k["prefix"] for k in reversed(three_keys)]


async def test_an_outlet_without_keys_has_an_empty_list(api):
    body = await api.gql(KEYS, {"id": TH_OUTLET}, who="th_admin")
    assert body["data"]["outlet"]["partnerKeys"] == []


async def test_a_page_of_outlets_costs_one_query_for_all_their_keys(served, sessions):
    api, app = served
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        tenant_id = (await session.exec(select(Tenant.id).where(Tenant.path == TH))).one()
        outlets = [f"keyed-{n:04d}" for n in range(120)]
        await session.exec(
            insert(Outlet),
            params=[
                {
                    "id": o,
                    "tenant_id": tenant_id,
                    "kind": "hrss_hall",
                    "name": o,
                    "created_at": now,
                    "updated_at": now,
                }
                for o in outlets
            ],
        )
        await session.exec(
            insert(PartnerKey),
            params=[
                {
                    "outlet_id": o,
                    "key_hash": f"{o}-{n}".ljust(64, "0"),
                    "prefix": f"ssc_pk_{n}{o[-4:]}xyz",
                    "expires_at": now + timedelta(days=1),
                    "created_at": now + timedelta(seconds=n),
                }
                for o in outlets
                for n in range(2)
            ],
        )
    query = (
        'query($first: Int) { outlets(search: "keyed-", first: $first) { edges { node { id'
        " partnerKeys { prefix status } } } } }"
    )
    with recorded_statements(app.state.engine.sync_engine) as statements:
        counts = {}
        for size in (10, 100):
            statements.clear()
            body = await api.gql(query, {"first": size}, who="th_admin")
            edges = body["data"]["outlets"]["edges"]
            assert len(edges) == size
            for edge in edges:
                keys = edge["node"]["partnerKeys"]
                assert [k["prefix"][7] for k in keys] == ["1", "0"], keys  # newest first
            counts[size] = len(statements)
            assert sum("partner_key" in s for s in statements) == 1
    # token + roles, count + page, one batch of keys
    assert counts == {10: 5, 100: 5}, counts
