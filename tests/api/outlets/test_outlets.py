"""Outlet queries and mutations over HTTP: each person reaches their own subtree and nothing else,
every change is one transaction with its policy line and audit event, refusals change nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert
from sqlmodel import select

from app.ops.grants.changes import GrantRequest, grant_service
from app.store.tables import AuditEvent, Grant, Outlet, PartnerKey, PolicyLine, Tenant
from tests.api.conftest import error_code
from tests.api.grant_helpers import GRANT_SERVICE, grant_input
from tests.api.outlet_helpers import GZ, SZ, TH, db_state, recorded_statements
from tests.audit_helpers import assert_only_denial

YX = "cn/440000/440100/440104"
GZ_OUTLETS = 13  # outlets of Guangzhou and its districts in tenants/guangdong.toml

OUTLETS = (
    "query($t: String, $d: Boolean! = true, $k: String, $b: String, $s: String, $q: String,"
    " $first: Int, $after: String) { outlets(tenant: $t, descendants: $d, kind: $k, bank: $b, status: $s,"
    " search: $q, first: $first, after: $after) { totalCount edges { node { id tenantPath kind } }"
    " pageInfo { hasNextPage endCursor } } }"
)
OUTLET = (
    "query($id: String!) { outlet(id: $id) { id kind name tenantPath status version managedByFile"
    " bankCode nbsCode tenant { path name } grants { id service state tenant } effectiveServices } }"
)
CREATE = (
    "mutation($i: CreateOutletInput!) { createOutlet(input: $i) { outlet { id tenantPath kind name bankCode"
    " nbsCode address status version managedByFile } } }"
)
UPDATE = (
    "mutation($i: UpdateOutletInput!) { updateOutlet(input: $i) { revokedGrantIds"
    " outlet { id tenantPath kind name bankCode nbsCode address version } } }"
)
CLOSE = (
    "mutation($i: CloseOutletInput!) { closeOutlet(input: $i) { revokedGrantIds revokedPartnerKeyCount"
    " outlet { id status version effectiveServices } } }"
)

NEW = {"id": "th-new-hall", "tenant": TH, "kind": "hrss_hall", "name": "天河新服务厅"}


def field_of(body: dict) -> str | None:
    return body["errors"][0]["extensions"].get("field")


async def create(api, who: str = "gz_admin", **fields) -> dict:
    body = await api.gql(CREATE, {"i": {**NEW, **fields}}, who=who)
    assert "errors" not in body, body
    return body["data"]["createOutlet"]["outlet"]


async def add_grant(sessions, outlet_id: str, service: str, tenant: str = GZ) -> int:
    async with sessions() as session, session.begin():
        grant = await grant_service(
            session,
            GrantRequest(
                tenant=tenant,
                service=service,
                valid_from=datetime.now(UTC) - timedelta(hours=1),
                document_ref="穗人社〔2025〕1号",
                outlet_id=outlet_id,
            ),
            actor="test",
        )
    return grant.id


async def outlet_lines(sessions, outlet_id: str) -> list[tuple]:
    async with sessions() as session:
        rows = (
            await session.exec(
                select(PolicyLine).where(PolicyLine.source == "outlet", PolicyLine.source_id == outlet_id)
            )
        ).all()
    return [(r.ptype, r.v0, r.v1, r.v2) for r in rows]


async def eventually(check, timeout: float = 3.0):
    """The policy tailer applies committed changes within ~100 ms; poll instead of sleeping blindly."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.05)


# --- reads ----------------------------------------------------------------------------------------


async def test_a_city_admin_lists_only_the_city(api):
    page = (await api.gql(OUTLETS, who="gz_admin"))["data"]["outlets"]
    paths = {e["node"]["tenantPath"] for e in page["edges"]}
    assert all(p == GZ or p.startswith(GZ + "/") for p in paths)
    assert page["totalCount"] == len(page["edges"]) == GZ_OUTLETS
    everything = (await api.gql(OUTLETS, who="gd_admin"))["data"]["outlets"]
    assert everything["totalCount"] == 25 and {e["node"]["id"] for e in page["edges"]} < {
        e["node"]["id"] for e in everything["edges"]
    }


async def test_filters_combine(api):
    async def ids(**variables) -> list[str]:
        body = await api.gql(OUTLETS, variables, who="gz_admin")
        assert "errors" not in body, body
        return [e["node"]["id"] for e in body["data"]["outlets"]["edges"]]

    assert await ids(t=TH, k="grassroots_platform") == [
        "gz-th-shipai",
        "gz-th-wushan",
        "gz-th-wushan-huajing",
    ]
    assert await ids(k="bank_outlet", b="105") == ["gz-th-ccb-tiyu"]
    assert await ids(t=GZ, d=False) == ["gz-hall-city"]
    assert await ids(q="WUSHAN") == ["gz-th-wushan", "gz-th-wushan-huajing"]  # code, any case
    assert await ids(q="华景") == ["gz-th-wushan-huajing"]  # name
    assert await ids(q="%") == []  # LIKE wildcards are matched literally
    assert await ids(s="closed") == []
    assert len(await ids(s="open")) == GZ_OUTLETS


async def test_keyset_pages_cover_the_list_once(api):
    seen, after = [], None
    while True:
        page = (await api.gql(OUTLETS, {"first": 4, "after": after}, who="gd_admin"))["data"]["outlets"]
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == page["totalCount"] == 25


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"q": "x" * 65}, "search"),
        ({"q": ""}, "search"),
        ({"k": "bank"}, "kind"),
        ({"s": "gone"}, "status"),
        ({"b": "icbc"}, "bank"),
        ({"t": "cn/440000/450100"}, "tenant"),
        ({"first": 500}, "first"),
    ],
)
async def test_bad_filters_are_bad_input(api, variables, field):
    body = await api.gql(OUTLETS, variables, who="gz_admin")
    assert error_code(body) == "BAD_INPUT" and field_of(body) == field


@pytest.mark.parametrize(
    ("who", "tenant"), [("gz_admin", SZ), ("th_admin", GZ), ("gz_admin", "cn/440000/440300/440399")]
)
async def test_listing_outside_the_subtree_is_forbidden_not_empty(api, sessions, who, tenant):
    before = await db_state(sessions)
    assert error_code(await api.gql(OUTLETS, {"t": tenant}, who=who)) == "FORBIDDEN"
    assert_only_denial(before, await db_state(sessions), who)


async def test_one_outlet_in_reach_with_tenant_grants_and_services(api, sessions):
    grant_id = await add_grant(sessions, "gz-th-wushan", "password_reset")
    body = await api.gql(OUTLET, {"id": "gz-th-wushan"}, who="th_admin")
    outlet = body["data"]["outlet"]
    assert outlet["tenant"] == {"path": TH, "name": "广州市天河区人力资源和社会保障局"}
    assert outlet["managedByFile"] == "guangdong.toml" and outlet["nbsCode"] == "440106001"
    # A Guangzhou grant is visible to the city but not to the district that did not make it.
    assert outlet["grants"] == []
    by_city = (await api.gql(OUTLET, {"id": "gz-th-wushan"}, who="gz_admin"))["data"]["outlet"]
    assert by_city["grants"] == [
        {"id": str(grant_id), "service": "password_reset", "state": "active", "tenant": GZ}
    ]

    async def services():
        got = await api.gql(OUTLET, {"id": "gz-th-wushan"}, who="gz_admin")
        return got["data"]["outlet"]["effectiveServices"] == ["password_reset"]

    assert await eventually(services)


async def test_statutory_services_and_the_at_argument(api):
    query = "query($id: String!, $at: DateTime) { outlet(id: $id) { effectiveServices(at: $at) } }"
    hospital = await api.gql(query, {"id": "gz-th-hosp-tianhe"}, who="gz_admin")
    assert hospital["data"]["outlet"]["effectiveServices"] == ["activation"]
    kiosk = await api.gql(
        query, {"id": "gz-th-kiosk-metro", "at": "2030-01-01T00:00:00+08:00"}, who="gz_admin"
    )
    assert kiosk["data"]["outlet"]["effectiveServices"] == []
    naive = await api.gql(query, {"id": "gz-th-hosp-tianhe", "at": "2030-01-01T00:00:00"}, who="gz_admin")
    assert error_code(naive) == "BAD_INPUT" and field_of(naive) == "$at"  # the variable, refused by DateTime


async def test_operators_see_outlets_and_grants_but_not_departments(api):
    outlet = (await api.gql(OUTLET, {"id": "gz-hall-city"}, who="gz_operator"))["data"]["outlet"]
    assert outlet["id"] == "gz-hall-city" and outlet["tenant"] is None and outlet["grants"] == []


@pytest.mark.parametrize(
    ("who", "outlet_id"),
    [
        ("gz_admin", "sz-hall-city"),  # sibling
        ("th_admin", "gz-hall-city"),  # child looking up
        ("gz_admin", "gz-does-not-exist"),  # does not exist: the same answer
        ("gd_admin", "nowhere"),  # a province does not reach the whole country either
    ],
)
async def test_outlets_out_of_reach_are_forbidden_whether_or_not_they_exist(api, sessions, who, outlet_id):
    before = await db_state(sessions)
    body = await api.gql(OUTLET, {"id": outlet_id}, who=who)
    assert error_code(body) == "FORBIDDEN"
    assert body["errors"][0]["message"] == f"not allowed to read outlet {outlet_id}"
    assert_only_denial(before, await db_state(sessions), who)


async def test_reading_needs_a_token(api):
    assert error_code(await api.gql(OUTLET, {"id": "gz-hall-city"})) == "UNAUTHENTICATED"
    assert error_code(await api.gql(OUTLETS)) == "UNAUTHENTICATED"


# --- statement count ------------------------------------------------------------------------------


async def test_a_page_costs_the_same_statements_for_10_and_100_outlets(served, sessions):
    api, app = served
    async with sessions() as session, session.begin():
        tenant_ids = (await session.exec(select(Tenant.id).where(Tenant.path.like(f"{GZ}/%")))).all()
        now = datetime.now(UTC)
        await session.exec(
            insert(Outlet),
            params=[
                {
                    "id": f"bulk-{n:04d}",
                    "tenant_id": tenant_ids[n % len(tenant_ids)],
                    "kind": "hrss_hall",
                    "name": f"批量网点 {n}",
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(120)
            ],
        )
        gz_id = (await session.exec(select(Tenant.id).where(Tenant.path == GZ))).one()
        await session.exec(
            insert(Grant),
            params=[
                {
                    "tenant_id": gz_id,
                    "outlet_id": f"bulk-{n:04d}",
                    "service": "info_inquiry",
                    "valid_from": now,
                    "document_ref": "test",
                    "state": "active",
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(120)
            ],
        )
    query = (
        'query($first: Int) { outlets(search: "bulk-", first: $first) { totalCount edges { node {'
        " id tenant { path name } grants { id service state } effectiveServices } } } }"
    )
    with recorded_statements(app.state.engine.sync_engine) as statements:
        counts = {}
        for size in (10, 100):
            statements.clear()
            body = await api.gql(query, {"first": size}, who="gz_admin")
            edges = body["data"]["outlets"]["edges"]
            assert len(edges) == size and all(len(e["node"]["grants"]) == 1 for e in edges)
            assert all(e["node"]["tenant"]["name"] for e in edges)
            counts[size] = len(statements)
    # token + roles, count + page, one batch of tenants, one batch of grants
    assert counts == {10: 6, 100: 6}, counts


# --- createOutlet ---------------------------------------------------------------------------------


async def test_create_registers_the_outlet_with_its_line_and_event(api, sessions):
    outlet = await create(api, kind="designated_pharmacy", id="th-new-pharmacy", address=" 天河路 1 号 ")
    assert outlet == {
        "id": "th-new-pharmacy",
        "tenantPath": TH,
        "kind": "designated_pharmacy",
        "name": "天河新服务厅",
        "bankCode": None,
        "nbsCode": None,
        "address": "天河路 1 号",
        "status": "open",
        "version": 1,
        "managedByFile": None,
    }
    assert await outlet_lines(sessions, "th-new-pharmacy") == [
        ("g", "outlet:th-new-pharmacy", "kind:designated_pharmacy", TH)
    ]
    async with sessions() as session:
        events = (
            await session.exec(select(AuditEvent).where(AuditEvent.target_id == "th-new-pharmacy"))
        ).all()
    assert [(e.tenant, e.action, e.actor) for e in events] == [(TH, "outlet.create", "principal:gz.admin")]
    assert '"after"' in events[0].detail

    async def statutory():
        got = await api.gql(OUTLET, {"id": "th-new-pharmacy"}, who="th_admin")
        return got["data"]["outlet"]["effectiveServices"] == ["activation"]

    assert await eventually(statutory)


async def test_operators_create_and_kind_fields_are_kept(api):
    bank = await create(api, who="gz_operator", id="gz-bank-x", tenant=GZ, kind="bank_outlet", bankCode="104")
    assert bank["bankCode"] == "104" and bank["tenantPath"] == GZ
    grassroots = await create(api, id="th-street-x", kind="grassroots_platform", nbsCode="440106099001")
    assert grassroots["nbsCode"] == "440106099001"
    town = await create(
        api,
        who="gd_admin",
        id="dg-town-x",
        tenant="cn/440000/441900",
        kind="grassroots_platform",
        nbsCode="441900099",
    )
    assert town["tenantPath"] == "cn/440000/441900"


@pytest.mark.parametrize(
    ("who", "code"),
    [
        ("sz_admin", "FORBIDDEN"),
        ("th_admin", "FORBIDDEN"),
        ("gz_auditor", "FORBIDDEN"),
        ("gz_approver", "FORBIDDEN"),
        (None, "UNAUTHENTICATED"),
    ],
)
async def test_create_outside_reach_is_refused_and_changes_nothing(api, sessions, who, code):
    before = await db_state(sessions)
    # th_admin is below Guangzhou: creating at the city level is acting upward.
    body = await api.gql(CREATE, {"i": {**NEW, "tenant": GZ}}, **({"who": who} if who else {}))
    assert error_code(body) == code
    assert_only_denial(before, await db_state(sessions), who)


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"tenant": "cn/440000/450100"}, "BAD_INPUT", "tenant"),
        ({"tenant": "cn/440000/440100/440113"}, "BAD_INPUT", "tenant"),  # in reach, does not exist
        ({"id": "Bad Id"}, "BAD_INPUT", "id"),
        ({"id": "   "}, "BAD_INPUT", "id"),
        ({"name": "名" * 129}, "BAD_INPUT", "name"),
        ({"address": "a" * 256}, "BAD_INPUT", "address"),
        ({"kind": "bank"}, "BAD_INPUT", "kind"),
        ({"kind": "bank_outlet"}, "BAD_INPUT", "bankCode"),
        ({"bankCode": "102"}, "BAD_INPUT", "bankCode"),
        ({"kind": "bank_outlet", "bankCode": "icbc"}, "BAD_INPUT", "bankCode"),
        ({"kind": "grassroots_platform"}, "BAD_INPUT", "nbsCode"),
        ({"kind": "grassroots_platform", "nbsCode": "440305001"}, "BAD_INPUT", "nbsCode"),
        ({"kind": "grassroots_platform", "nbsCode": "440106001", "tenant": GZ}, "BAD_INPUT", "nbsCode"),
        ({"kind": "grassroots_platform", "nbsCode": "440100001", "tenant": GZ}, "BAD_INPUT", "tenant"),
        ({"nbsCode": "440106009"}, "BAD_INPUT", "nbsCode"),
        ({"id": "gz-th-hall"}, "CONFLICT", "id"),
        ({"kind": "grassroots_platform", "nbsCode": "440106001"}, "CONFLICT", "nbsCode"),
    ],
)
async def test_bad_input_writes_nothing(api, sessions, fields, code, field):
    before = await db_state(sessions)
    body = await api.gql(CREATE, {"i": {**NEW, **fields}}, who="gz_admin")
    assert error_code(body) == code, body
    assert field_of(body) == field, body
    assert_only_denial(before, await db_state(sessions), "gz_admin")


# --- updateOutlet ---------------------------------------------------------------------------------


async def test_update_changes_fields_and_checks_the_version(api, sessions):
    await create(api)
    body = await api.gql(
        UPDATE,
        {"i": {"id": NEW["id"], "expectedVersion": 1, "name": "天河服务厅", "address": "体育西路"}},
        who="th_admin",
    )
    outlet = body["data"]["updateOutlet"]["outlet"]
    assert (outlet["name"], outlet["address"], outlet["version"]) == ("天河服务厅", "体育西路", 2)
    cleared = await api.gql(
        UPDATE, {"i": {"id": NEW["id"], "expectedVersion": 2, "address": None}}, who="th_admin"
    )
    assert cleared["data"]["updateOutlet"]["outlet"]["address"] is None
    before = await db_state(sessions)
    stale = await api.gql(UPDATE, {"i": {"id": NEW["id"], "expectedVersion": 2, "name": "x"}}, who="th_admin")
    assert error_code(stale) == "CONFLICT" and stale["errors"][0]["extensions"]["currentVersion"] == 3
    assert_only_denial(before, await db_state(sessions), "th_admin")
    async with sessions() as session:
        actions = (
            await session.exec(select(AuditEvent.action).where(AuditEvent.target_id == NEW["id"]))
        ).all()
    assert actions == ["outlet.create", "outlet.update", "outlet.update"]


async def test_file_managed_outlets_are_changed_in_their_file(api, sessions):
    before = await db_state(sessions)
    body = await api.gql(
        UPDATE, {"i": {"id": "gz-th-hall", "expectedVersion": 1, "name": "x"}}, who="gz_admin"
    )
    assert error_code(body) == "CONFLICT" and body["errors"][0]["extensions"]["managedBy"] == "guangdong.toml"
    assert_only_denial(before, await db_state(sessions), "gz_admin")
    before = await db_state(sessions)
    closed = await api.gql(
        CLOSE, {"i": {"id": "gz-th-hall", "expectedVersion": 1, "reason": "x"}}, who="gz_admin"
    )
    assert error_code(closed) == "CONFLICT"
    assert_only_denial(before, await db_state(sessions), "gz_admin")


async def test_moving_revokes_the_outlets_grants_and_rewrites_its_line(api, sessions):
    await create(api)
    kept = await add_grant(sessions, NEW["id"], "password_reset")
    body = await api.gql(UPDATE, {"i": {"id": NEW["id"], "expectedVersion": 1, "tenant": YX}}, who="gz_admin")
    payload = body["data"]["updateOutlet"]
    assert payload["outlet"]["tenantPath"] == YX and payload["revokedGrantIds"] == [kept]
    async with sessions() as session:
        grant = await session.get(Grant, kept)
        grant_lines = (await session.exec(select(PolicyLine).where(PolicyLine.source_id == str(kept)))).all()
        events = (
            await session.exec(
                select(AuditEvent.tenant, AuditEvent.action)
                .where(AuditEvent.decision.is_(None))
                .order_by(AuditEvent.id)
            )
        ).all()
    assert grant.state == "revoked" and grant.state_reason == f"outlet moved from {TH} to {YX}"
    assert grant_lines == []
    assert await outlet_lines(sessions, NEW["id"]) == [("g", f"outlet:{NEW['id']}", "kind:hrss_hall", YX)]
    assert events[-3:] == [(GZ, "grant.revoked"), (YX, "outlet.update"), (TH, "outlet.update")]

    async def no_services():
        got = await api.gql(OUTLET, {"id": NEW["id"]}, who="gz_admin")
        return got["data"]["outlet"]["effectiveServices"] == []

    assert await eventually(no_services)


async def test_a_new_kind_revokes_only_the_grants_it_cannot_hold(api, sessions):
    await create(api, id="th-bank-y", kind="bank_outlet", bankCode="105")
    inquiry = await add_grant(sessions, "th-bank-y", "info_inquiry")
    financial = await add_grant(sessions, "th-bank-y", "financial_activation")
    body = await api.gql(
        UPDATE,
        {"i": {"id": "th-bank-y", "expectedVersion": 1, "kind": "self_service_terminal", "bankCode": None}},
        who="th_admin",
    )
    assert body["data"]["updateOutlet"]["revokedGrantIds"] == [financial], body
    async with sessions() as session:
        assert (await session.get(Grant, inquiry)).state == "active"
    assert await outlet_lines(sessions, "th-bank-y") == [
        ("g", "outlet:th-bank-y", "kind:self_service_terminal", TH)
    ]


@pytest.mark.parametrize(
    ("who", "changes", "code"),
    [
        ("sz_admin", {}, "FORBIDDEN"),  # sibling
        ("th_admin", {}, "FORBIDDEN"),  # child acting upward on a city outlet
        ("gz_auditor", {}, "FORBIDDEN"),
        ("gz_approver", {}, "FORBIDDEN"),
        (None, {}, "UNAUTHENTICATED"),
        ("gz_admin", {"tenant": SZ}, "FORBIDDEN"),  # moving it out of one's reach
    ],
)
async def test_update_outside_reach_is_refused_and_changes_nothing(api, sessions, who, changes, code):
    await create(api, tenant=GZ)
    before = await db_state(sessions)
    variables = {"i": {"id": NEW["id"], "expectedVersion": 1, "name": "x", **changes}}
    body = await api.gql(UPDATE, variables, **({"who": who} if who else {}))
    assert error_code(body) == code
    assert_only_denial(before, await db_state(sessions), who)


async def test_updating_an_unknown_outlet_is_forbidden_like_a_foreign_one(api, sessions):
    before = await db_state(sessions)
    body = await api.gql(
        UPDATE, {"i": {"id": "gz-nothing", "expectedVersion": 1, "name": "x"}}, who="gz_admin"
    )
    assert (
        error_code(body) == "FORBIDDEN"
        and body["errors"][0]["message"] == "not allowed to write outlet gz-nothing"
    )
    assert_only_denial(before, await db_state(sessions), "gz_admin")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": None}, "name"),
        ({"name": "x" * 129}, "name"),
        ({"tenant": "cn/440000/440100/440199"}, "tenant"),
        ({"tenant": "cn/4400"}, "tenant"),
        ({"kind": "bank_outlet"}, "bankCode"),
        ({"kind": "grassroots_platform", "nbsCode": "440104001"}, "nbsCode"),
        ({"bankCode": "102"}, "bankCode"),
    ],
)
async def test_update_bad_input_writes_nothing(api, sessions, changes, field):
    await create(api)
    before = await db_state(sessions)
    body = await api.gql(UPDATE, {"i": {"id": NEW["id"], "expectedVersion": 1, **changes}}, who="gz_admin")
    assert error_code(body) == "BAD_INPUT" and field_of(body) == field, body
    assert_only_denial(before, await db_state(sessions), "gz_admin")


# --- closeOutlet ----------------------------------------------------------------------------------


async def test_close_revokes_grants_and_keys_and_removes_the_line(api, sessions):
    # The longest reason allowed: the grant's shorter state reason must still fit it.
    reason = "搬迁撤销" + "。" * 508
    await create(api)
    grant_id = await add_grant(sessions, NEW["id"], "info_inquiry")
    async with sessions() as session, session.begin():
        session.add(PartnerKey(outlet_id=NEW["id"], key_hash="a" * 64, prefix="ssc_pk_aaaa"))
    body = await api.gql(
        CLOSE, {"i": {"id": NEW["id"], "expectedVersion": 1, "reason": reason}}, who="th_admin"
    )
    payload = body["data"]["closeOutlet"]
    assert payload == {
        "revokedGrantIds": [grant_id],
        "revokedPartnerKeyCount": 1,
        "outlet": {"id": NEW["id"], "status": "closed", "version": 2, "effectiveServices": []},
    }
    async with sessions() as session:
        key = (await session.exec(select(PartnerKey))).one()
        grant = await session.get(Grant, grant_id)
        event_row = (await session.exec(select(AuditEvent).where(AuditEvent.action == "outlet.close"))).one()
    assert key.revoked_at is not None and grant.state == "revoked" and "搬迁撤销" in grant.state_reason
    assert await outlet_lines(sessions, NEW["id"]) == []
    assert event_row.tenant == TH and reason in event_row.detail
    again = await api.gql(
        CLOSE, {"i": {"id": NEW["id"], "expectedVersion": 2, "reason": "x"}}, who="th_admin"
    )
    assert error_code(again) == "CONFLICT"
    listed = await api.gql(OUTLETS, {"t": TH, "s": "closed"}, who="th_admin")
    assert [e["node"]["id"] for e in listed["data"]["outlets"]["edges"]] == [NEW["id"]]


@pytest.mark.parametrize(
    ("who", "code"),
    [
        ("sz_admin", "FORBIDDEN"),
        ("th_admin", "FORBIDDEN"),
        ("gz_auditor", "FORBIDDEN"),
        (None, "UNAUTHENTICATED"),
    ],
)
async def test_close_outside_reach_is_refused_and_changes_nothing(api, sessions, who, code):
    await create(api, tenant=GZ)
    await add_grant(sessions, NEW["id"], "info_inquiry")
    before = await db_state(sessions)
    variables = {"i": {"id": NEW["id"], "expectedVersion": 1, "reason": "x"}}
    body = await api.gql(CLOSE, variables, **({"who": who} if who else {}))
    assert error_code(body) == code
    assert_only_denial(before, await db_state(sessions), who)


@pytest.mark.parametrize(
    ("reason", "version", "code", "field"),
    [
        ("  ", 1, "BAD_INPUT", "reason"),
        ("x" * 513, 1, "BAD_INPUT", "reason"),
        ("ok", 7, "CONFLICT", "expectedVersion"),
    ],
)
async def test_close_bad_input_writes_nothing(api, sessions, reason, version, code, field):
    await create(api)
    before = await db_state(sessions)
    body = await api.gql(
        CLOSE, {"i": {"id": NEW["id"], "expectedVersion": version, "reason": reason}}, who="gz_admin"
    )
    assert error_code(body) == code and field_of(body) == field
    assert_only_denial(before, await db_state(sessions), "gz_admin")


async def test_a_grant_is_in_force_only_within_the_seconds_granted(no_approval, sessions):
    """The security review (issue 11, item 4): fractions of a second were cut, so a grant from
    00:00:00.5 was in force at 00:00:00.2. Windows are rounded inward: start up, end down."""
    grant = await no_approval.gql(
        GRANT_SERVICE,
        {"i": grant_input(validFrom="2030-06-01T00:00:00.5+00:00", validUntil="2030-06-02T00:00:00.9+00:00")},
        who="gz_admin",
    )
    assert grant["data"]["grantService"]["grant"]["validFrom"] == "2030-06-01T00:00:01+00:00", grant
    assert grant["data"]["grantService"]["grant"]["validUntil"] == "2030-06-02T00:00:00+00:00"
    query = 'query($at: DateTime) { outlet(id: "gz-th-wushan") { effectiveServices(at: $at) } }'

    async def granted_at(at: str) -> bool:
        body = await no_approval.gql(query, {"at": at}, who="gz_admin")
        return "password_change" in body["data"]["outlet"]["effectiveServices"]

    assert await eventually(lambda: granted_at("2030-06-01T12:00:00Z"))
    assert not await granted_at("2030-06-01T00:00:00.7Z")
    assert await granted_at("2030-06-01T00:00:01Z")
    assert await granted_at("2030-06-01T23:59:59.9Z")
    assert not await granted_at("2030-06-02T00:00:00.5Z")
    # A moment whose UTC instant leaves the accepted years is refused, not INTERNAL.
    body = await no_approval.gql(query, {"at": "9999-12-31T22:00:00-05:00"}, who="gz_admin")
    assert error_code(body) == "BAD_INPUT"
