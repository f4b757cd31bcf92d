"""Bulk grants: a selector or an uploaded list, all or nothing, one audit event, enforced at once."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from app.ops.grants.ceilings import set_ceiling
from app.ops.grants.selection import MAX_OUTLETS
from app.store.tables import AuditEvent, Ceiling, Grant, Tenant
from tests.api.conftest import error_code
from tests.api.grant_helpers import (
    GD,
    GZ,
    JAN,
    OUTSIDERS,
    SZ,
    TH,
    add_person,
    allowed,
    business,
    call,
    db_state,
)
from tests.audit_helpers import assert_only_denial

BULK = (
    "mutation($i: BulkGrantInput!) { bulkGrant(input: $i) {"
    " count state firstGrantId lastGrantId sampleGrantIds sampleOutletIds } }"
)
APPROVE_BULK = (
    "mutation($i: ApproveBulkGrantInput!) { approveBulkGrant(input: $i) {"
    " count state firstGrantId lastGrantId sampleGrantIds } }"
)
REJECT_BULK = (
    "mutation($i: RejectBulkGrantInput!) { rejectBulkGrant(input: $i) {"
    " count state firstGrantId lastGrantId sampleGrantIds } }"
)
GZ_GRASSROOTS = {"gz-th-wushan", "gz-th-wushan-huajing", "gz-th-shipai"}


def bulk(**kw) -> dict:
    return {
        "i": {
            "tenant": GZ,
            "service": "password_reset",
            "validFrom": JAN,
            "documentRef": "穗人社函〔2026〕12号",
            "selector": {"kind": "grassroots_platform"},
            **kw,
        }
    }


async def grants_made(sessions) -> list[Grant]:
    async with sessions() as session:
        return list((await session.exec(select(Grant).order_by(Grant.id))).all())


@pytest.mark.usefixtures("no_approval")
async def test_selector_grants_every_chosen_outlet_at_once(api, sessions, db_url):
    body = await api.gql(BULK, bulk(reason="基层平台统一开通密码重置"), who="gz_admin")
    result = body["data"]["bulkGrant"]
    assert (result["count"], result["state"]) == (3, "active")
    assert set(result["sampleOutletIds"]) == GZ_GRASSROOTS
    made = await grants_made(sessions)
    assert {g.outlet_id for g in made} == GZ_GRASSROOTS
    assert {str(g.id) for g in made} == set(result["sampleGrantIds"])
    assert [result["firstGrantId"], result["lastGrantId"]] == [str(made[0].id), str(made[-1].id)]
    assert all(g.state == "active" and g.service == "password_reset" and g.version == 1 for g in made)
    state = await business(sessions, db_url)
    assert all(allowed(state, outlet, TH, "password_reset") for outlet in GZ_GRASSROOTS)
    assert not allowed(state, "gz-th-hall", TH, "password_reset")
    async with sessions() as session:
        events = (
            await session.exec(select(AuditEvent).where(AuditEvent.actor == "principal:gz.admin"))
        ).all()
    assert len(events) == 1 and events[0].action == "grant.bulk_create" and events[0].tenant == GZ
    detail = json.loads(events[0].detail)
    assert detail["count"] == 3 and detail["selector"]["kind"] == "grassroots_platform"
    assert events[0].target_id == f"{made[0].id}..{made[-1].id}"


@pytest.mark.usefixtures("no_approval")
@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({"under": TH, "search": "五山"}, {"gz-th-wushan", "gz-th-wushan-huajing"}),
        ({"kind": "bank_outlet", "bank": "105"}, {"gz-th-ccb-tiyu"}),
        ({"kind": "hrss_hall", "under": GZ}, {"gz-hall-city", "gz-th-hall"}),
        ({"search": "SHIPAI"}, {"gz-th-shipai"}),  # ids match too, whatever the case
    ],
)
async def test_selector_conditions_combine(api, sessions, selector, expected):
    body = await api.gql(BULK, bulk(service="info_inquiry", selector=selector), who="gz_admin")
    assert body["data"]["bulkGrant"]["count"] == len(expected), body
    assert {g.outlet_id for g in await grants_made(sessions)} == expected


@pytest.mark.usefixtures("no_approval")
async def test_uploaded_list(api, sessions, db_url):
    text = "gz-th-wushan\r\ngz-th-shipai,gz-hall-city\n\ngz-th-wushan\n"  # a repeat counts once
    body = await api.gql(BULK, bulk(selector=None, outletList=text), who="gz_admin")
    assert body["data"]["bulkGrant"]["count"] == 3
    assert {g.outlet_id for g in await grants_made(sessions)} == {
        "gz-th-wushan",
        "gz-th-shipai",
        "gz-hall-city",
    }
    assert allowed(await business(sessions, db_url), "gz-hall-city", GZ, "password_reset")
    async with sessions() as session:
        event = (await session.exec(select(AuditEvent).where(AuditEvent.action == "grant.bulk_create"))).one()
    assert json.loads(event.detail)["outlet_list"]["ids"] == 3


async def test_under_two_person_approval_bulk_grants_are_proposals(api, sessions, db_url):
    body = await api.gql(BULK, bulk(), who="gz_operator")
    assert (body["data"]["bulkGrant"]["count"], body["data"]["bulkGrant"]["state"]) == (3, "proposed")
    made = await grants_made(sessions)
    assert {g.state for g in made} == {"proposed"} and {g.proposed_by for g in made} != {None}
    assert not allowed(await business(sessions, db_url), "gz-th-wushan", TH, "password_reset")


@pytest.mark.usefixtures("no_approval")
@pytest.mark.parametrize(
    ("variables", "code", "field", "problems"),
    [
        # A Shenzhen outlet and an unknown id in a Guangzhou list: refused whole, each one named.
        (
            {"selector": None, "outletList": "gz-th-wushan\nsz-ft-huafu\nno-such-outlet"},
            "BAD_INPUT",
            "outletList",
            {("OUTSIDE_TENANT", ("sz-ft-huafu",)), ("UNKNOWN_OUTLET", ("no-such-outlet",))},
        ),
        # Every kind under Tianhe: hospitals, pharmacies and kiosks may not reset passwords.
        (
            {"selector": {"under": TH}},
            "CEILING_EXCEEDED",
            None,
            {
                ("ABOVE_CEILING", ("gz-th-hosp-tianhe",)),
                ("ABOVE_CEILING", ("gz-th-pharm-dasenlin",)),
                ("ABOVE_CEILING", ("gz-th-kiosk-metro",)),
            },
        ),
        (
            {"service": "financial_activation", "selector": {"under": TH, "search": "wushan"}},
            "BAD_INPUT",
            "service",
            {("FINANCIAL_NOT_BANK", ("gz-th-wushan", "gz-th-wushan-huajing"))},
        ),
        ({"selector": {"status": "closed"}}, "BAD_INPUT", "selector", set()),  # nothing closed: empty
    ],
)
async def test_one_bad_outlet_refuses_the_whole_request(api, sessions, variables, code, field, problems):
    before = await db_state(sessions)
    body = await api.gql(BULK, bulk(**variables), who="gz_admin")
    assert error_code(body) == code, body
    extensions = body["errors"][0]["extensions"]
    assert extensions.get("field") == field
    assert {(p["problem"], tuple(p["outletIds"])) for p in extensions.get("problems", [])} == problems
    assert_only_denial(before, await db_state(sessions), "gz_admin")


@pytest.mark.usefixtures("no_approval")
async def test_ceiling_refusal_names_the_ceiling_tenant(api, sessions):
    async with sessions() as session, session.begin():
        await set_ceiling(session, GD, "grassroots_platform", ["info_inquiry"], actor="test")
    before = await db_state(sessions)
    body = await api.gql(BULK, bulk(), who="gz_admin")
    assert error_code(body) == "CEILING_EXCEEDED"
    extensions = body["errors"][0]["extensions"]
    assert extensions["ceilingTenant"] == GD
    [problem] = extensions["problems"]
    assert (problem["count"], problem["outletKind"], problem["ceilingTenant"]) == (
        3,
        "grassroots_platform",
        GD,
    )
    assert_only_denial(before, await db_state(sessions), "gz_admin")


@pytest.mark.usefixtures("no_approval")
@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"selector": {"under": SZ}}, "selector.under"),  # outside the granting tenant
        ({"selector": {"under": "cn/440000/450100"}}, "selector.under"),
        ({"selector": {"kind": "spaceport"}}, "selector.kind"),
        ({"selector": {"search": "s" * 65}}, "selector.search"),
        ({"selector": {"bank": "1" * 17}}, "selector.bank"),
        ({"selector": {"status": "ajar"}}, "selector.status"),
        ({"selector": None}, "selector"),  # neither a selector nor a list
        ({"outletList": "gz-th-wushan"}, "selector"),  # both
        ({"selector": None, "outletList": " ,\n"}, "outletList"),
        ({"selector": None, "outletList": "x" * 65}, "outletList"),
        ({"selector": None, "outletList": "\n".join(f"o{i}" for i in range(MAX_OUTLETS + 1))}, "outletList"),
        ({"service": "teleportation"}, "service"),
        ({"tenant": "cn/440000/450100"}, "tenant"),
        ({"validUntil": "2025-01-01T00:00:00Z"}, "validUntil"),
        ({"documentRef": ""}, "documentRef"),
        ({"reason": "r" * 513}, "reason"),
    ],
)
async def test_bad_bulk_input_writes_nothing(api, sessions, variables, field):
    before = await db_state(sessions)
    body = await api.gql(BULK, bulk(**variables), who="gz_admin")
    assert error_code(body) == "BAD_INPUT", body
    assert body["errors"][0]["extensions"]["field"] == field
    assert_only_denial(before, await db_state(sessions), "gz_admin")


@pytest.mark.usefixtures("no_approval")
@pytest.mark.parametrize(("who", "code"), [*OUTSIDERS, ("gz_approver", "FORBIDDEN")])
async def test_outsiders_cannot_bulk_grant(api, sessions, who, code):
    before = await db_state(sessions)
    assert error_code(await call(api, BULK, bulk(), who)) == code
    assert_only_denial(before, await db_state(sessions), who)


# --- deciding a bulk proposal ---------------------------------------------------------------------


async def propose(api, who="gz_operator", **kw) -> dict:
    body = await api.gql(BULK, bulk(**kw), who=who)
    result = body["data"]["bulkGrant"]
    assert result["state"] == "proposed", body
    return result


def decision(result: dict, count: int | None = None, **kw) -> dict:
    return {
        "i": {
            "tenant": GZ,
            "firstGrantId": result["firstGrantId"],
            "lastGrantId": result["lastGrantId"],
            "expectedCount": result["count"] if count is None else count,
            **kw,
        }
    }


async def test_approving_a_bulk_proposal_puts_it_in_force(api, sessions, db_url):
    proposed = await propose(api)
    body = await api.gql(APPROVE_BULK, decision(proposed), who="gz_approver")
    result = body["data"]["approveBulkGrant"]
    assert (result["count"], result["state"]) == (3, "active")
    made = await grants_made(sessions)
    assert {(g.state, g.version) for g in made} == {("active", 2)} and len({g.approved_by for g in made}) == 1
    state = await business(sessions, db_url)
    assert all(allowed(state, outlet, TH, "password_reset") for outlet in GZ_GRASSROOTS)
    async with sessions() as session:
        event = (
            await session.exec(select(AuditEvent).where(AuditEvent.action == "grant.bulk_approve"))
        ).one()
    assert (event.actor, event.target_id) == ("principal:gz.approver", f"{made[0].id}..{made[-1].id}")


async def test_rejecting_a_bulk_proposal(api, sessions, db_url):
    proposed = await propose(api)
    body = await api.gql(REJECT_BULK, decision(proposed, reason="范围有误"), who="gz_approver")
    assert body["data"]["rejectBulkGrant"]["state"] == "rejected"
    assert {(g.state, g.state_reason) for g in await grants_made(sessions)} == {("rejected", "范围有误")}
    assert not allowed(await business(sessions, db_url), "gz-th-wushan", TH, "password_reset")
    # Decided once: the range holds no proposals any more.
    assert error_code(await api.gql(APPROVE_BULK, decision(proposed), who="gz_approver")) == "CONFLICT"


async def test_a_bulk_proposer_cannot_approve_it(api, sessions):
    token = await add_person(sessions, "gz.both", GZ, "operator", more_roles=[("approver", GZ)])
    body = await api.gql(BULK, bulk(), token=token)
    proposed = body["data"]["bulkGrant"]
    before = await db_state(sessions)
    body = await api.gql(APPROVE_BULK, decision(proposed), token=token)
    assert error_code(body) == "FORBIDDEN" and "you proposed it" in body["errors"][0]["message"]
    assert_only_denial(before, await db_state(sessions), "gz_both")


async def test_bulk_decisions_need_the_reviewed_count_and_one_proposer(api, sessions):
    proposed = await propose(api)
    before = await db_state(sessions)
    body = await api.gql(APPROVE_BULK, decision(proposed, count=2), who="gz_approver")
    assert error_code(body) == "CONFLICT" and body["errors"][0]["extensions"]["currentCount"] == 3
    assert_only_denial(before, await db_state(sessions), "gz_approver")
    other = await propose(api, "gz_admin", service="info_inquiry")
    both = {**proposed, "lastGrantId": other["lastGrantId"], "count": 6}
    body = await api.gql(APPROVE_BULK, decision(both), who="gz_approver")
    assert error_code(body) == "BAD_INPUT" and body["errors"][0]["extensions"]["field"] == "firstGrantId"
    body = await api.gql(REJECT_BULK, decision(proposed, reason=" "), who="gz_approver")
    assert error_code(body) == "BAD_INPUT" and body["errors"][0]["extensions"]["field"] == "reason"
    body = await api.gql(APPROVE_BULK, decision({**proposed, "firstGrantId": "x1"}), who="gz_approver")
    assert error_code(body) == "BAD_INPUT" and body["errors"][0]["extensions"]["field"] == "firstGrantId"


async def test_bulk_approval_rechecks_the_ceiling(api, sessions):
    proposed = await propose(api)
    async with sessions() as session, session.begin():
        province = (await session.exec(select(Tenant).where(Tenant.path == GD))).one()
        session.add(
            Ceiling(tenant_id=province.id, outlet_kind="grassroots_platform", services="info_inquiry")
        )
    before = await db_state(sessions)
    body = await api.gql(APPROVE_BULK, decision(proposed), who="gz_approver")
    assert error_code(body) == "CEILING_EXCEEDED" and body["errors"][0]["extensions"]["ceilingTenant"] == GD
    assert_only_denial(before, await db_state(sessions), "gz_approver")


@pytest.mark.parametrize("query", [APPROVE_BULK, REJECT_BULK])
@pytest.mark.parametrize(
    ("who", "code"), [*OUTSIDERS, ("gz_admin", "FORBIDDEN"), ("gz_operator", "FORBIDDEN")]
)
async def test_outsiders_cannot_decide_a_bulk_proposal(api, sessions, query, who, code):
    proposed = await propose(api, "gz_admin")
    before = await db_state(sessions)
    variables = decision(proposed, reason="x") if query == REJECT_BULK else decision(proposed)
    assert error_code(await call(api, query, variables, who)) == code
    assert_only_denial(before, await db_state(sessions), who)
