"""Grants through the API: who may grant, suspend, resume and revoke where, what bad input is
refused, what the grants query shows to whom, and that an active grant is enforced."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.ops.grants.ceilings import set_ceiling
from app.store.tables import AuditEvent
from tests.api.conftest import error_code
from tests.api.grant_helpers import (
    APPROVE,
    GD,
    GRANT_FIELDS,
    GRANT_SERVICE,
    GZ,
    JAN,
    NOW,
    OUTSIDERS,
    RESUME,
    REVOKE,
    SUSPEND,
    SZ,
    TH,
    allowed,
    business,
    call,
    change,
    create,
    db_state,
    grant_input,
)
from tests.audit_helpers import assert_nothing_written, assert_only_denial

FT = "cn/440000/440300/440304"

GRANTS = (
    "query($t: String, $o: String, $s: String, $st: GrantState, $at: DateTime, $first: Int, $after: String)"
    " { grants(tenant: $t, outlet: $o, service: $s, state: $st, activeAt: $at, first: $first, after: $after)"
    " { totalCount edges { cursor node { id tenant outletId service state proposedBy } }"
    " pageInfo { hasNextPage endCursor } } }"
)
GRANT = "query($id: ID!) { grant(id: $id) " + GRANT_FIELDS + " }"


# --- grantService ---------------------------------------------------------------------------------


async def test_grant_without_approval_is_active_and_enforced(no_approval, sessions, db_url):
    api = no_approval
    assert not allowed(await business(sessions, db_url), "gz-th-wushan", TH, "password_change")
    grant = await create(api, reason="街道服务站延伸")
    assert grant["state"] == "active" and grant["proposedBy"] == "gz.admin" and grant["approvedBy"] is None
    assert (grant["tenant"], grant["outletId"], grant["version"]) == (GZ, "gz-th-wushan", 1)
    assert allowed(await business(sessions, db_url), "gz-th-wushan", TH, "password_change")
    async with sessions() as session:
        event = (await session.exec(select(AuditEvent).where(AuditEvent.action == "grant.create"))).one()
    assert (event.tenant, event.actor, event.target_id) == (GZ, "principal:gz.admin", grant["id"])


async def test_grant_under_two_person_approval_is_a_proposal(api, sessions, db_url):
    before = (await db_state(sessions))["lines"]
    grant = await create(api, "gz_operator")
    assert grant["state"] == "proposed" and grant["proposedBy"] == "gz.operator"
    assert (await db_state(sessions))["lines"] == before
    assert not allowed(await business(sessions, db_url), "gz-th-wushan", TH, "password_change")


async def test_shenzhen_sets_approval_off_for_itself(api):
    grant = await create(api, "sz_admin", tenant=SZ, outletId="sz-ft-huafu")
    assert grant["state"] == "active"


async def test_grant_to_an_outlet_kind(no_approval, sessions, db_url):
    grant = await create(no_approval, outletId=None, outletKind="grassroots_platform", service="info_inquiry")
    assert grant["outletKind"] == "grassroots_platform" and grant["outletId"] is None
    state = await business(sessions, db_url)
    assert allowed(state, "gz-th-shipai", TH, "info_inquiry")
    assert not allowed(state, "sz-ft-huafu", FT, "info_inquiry")  # Shenzhen is not Guangzhou's


@pytest.mark.parametrize(("who", "code"), [*OUTSIDERS, ("gz_approver", "FORBIDDEN")])
async def test_outsiders_cannot_grant(no_approval, sessions, who, code):
    before = await db_state(sessions)
    body = await call(no_approval, GRANT_SERVICE, {"i": grant_input()}, who)
    assert error_code(body) == code
    assert_only_denial(before, await db_state(sessions), who)


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"tenant": "cn/440000/450100"}, "tenant"),  # a Guangxi city under Guangdong
        ({"tenant": "cn/" + "4" * 80}, "tenant"),
        ({"outletId": "sz-ft-huafu"}, "outletId"),  # a Shenzhen outlet in a Guangzhou grant
        ({"outletId": "no-such-outlet"}, "outletId"),
        ({"outletId": "x" * 65}, "outletId"),
        ({"service": "teleportation"}, "service"),
        ({"service": "s" * 40}, "service"),
        ({"validUntil": "2025-12-31T00:00:00+00:00"}, "validUntil"),  # ends before it starts
        ({"validUntil": JAN}, "validUntil"),  # empty window
        ({"service": "financial_activation"}, "service"),  # bank-side service, grassroots outlet
        ({"documentRef": " "}, "documentRef"),
        ({"documentRef": "文" * 129}, "documentRef"),
        ({"reason": "r" * 513}, "reason"),
        ({"outletKind": "grassroots_platform"}, "outlet"),  # both targets
        ({"outletId": None}, "outlet"),  # no target
        ({"outletId": None, "outletKind": "spaceport"}, "outletKind"),
    ],
)
async def test_bad_input_is_refused_and_writes_nothing(no_approval, sessions, kw, field):
    before = await db_state(sessions)
    body = await no_approval.gql(GRANT_SERVICE, {"i": grant_input(**kw)}, who="gz_admin")
    assert error_code(body) == "BAD_INPUT", body
    assert body["errors"][0]["extensions"]["field"] == field
    assert_only_denial(before, await db_state(sessions), "gz_admin")


@pytest.mark.parametrize(
    "valid_from",
    [
        "next tuesday",
        "2026-01-01T00:00:00",  # no time zone
        "0001-01-01T00:00:00Z",  # a window the policy's time text could not order (security review)
        "1999-12-31T23:59:59Z",
        "2200-01-01T00:00:00Z",
        "9999-12-31T22:00:00-05:00",  # its UTC instant is in the year 10000
    ],
)
async def test_times_outside_the_accepted_range_are_refused_before_anything_runs(
    no_approval, sessions, valid_from
):
    before = await db_state(sessions)
    body = await no_approval.gql(GRANT_SERVICE, {"i": grant_input(validFrom=valid_from)}, who="gz_admin")
    assert error_code(body) == "BAD_INPUT" and body["errors"][0]["extensions"]["field"] == "validFrom", body
    body = await no_approval.gql(GRANT_SERVICE, {"i": grant_input(validUntil=valid_from)}, who="gz_admin")
    assert error_code(body) == "BAD_INPUT" and body["errors"][0]["extensions"]["field"] == "validUntil", body
    assert error_code(await no_approval.gql(GRANTS, {"st": "sleeping"}, who="gz_admin")) == "BAD_INPUT"
    assert_nothing_written(before, await db_state(sessions))


async def test_grant_above_the_ceiling_names_the_ceiling_tenant(no_approval, sessions):
    async with sessions() as session, session.begin():
        await set_ceiling(session, GD, "grassroots_platform", ["info_inquiry"], actor="test")
    before = await db_state(sessions)
    body = await no_approval.gql(GRANT_SERVICE, {"i": grant_input()}, who="gz_admin")
    assert error_code(body) == "CEILING_EXCEEDED"
    assert body["errors"][0]["extensions"]["ceilingTenant"] == GD
    assert_only_denial(before, await db_state(sessions), "gz_admin")
    # The default catalogue is a ceiling too: pharmacies may not be granted info_inquiry.
    before = await db_state(sessions)
    pharmacy = grant_input(outletId="gz-th-pharm-dasenlin", service="info_inquiry")
    body = await no_approval.gql(GRANT_SERVICE, {"i": pharmacy}, who="gz_admin")
    assert error_code(body) == "CEILING_EXCEEDED" and body["errors"][0]["extensions"]["outletKind"] == (
        "designated_pharmacy"
    )
    assert_only_denial(before, await db_state(sessions), "gz_admin")


# --- suspend, resume, revoke ----------------------------------------------------------------------


async def test_suspend_resume_revoke(no_approval, sessions, db_url):
    api = no_approval
    grant = await create(api)
    body = await api.gql(SUSPEND, change(grant, 1), who="gz_operator")
    suspended = body["data"]["suspendGrant"]["grant"]
    assert (suspended["state"], suspended["stateReason"], suspended["version"]) == ("suspended", "检查", 2)
    assert not allowed(await business(sessions, db_url), "gz-th-wushan", TH, "password_change")
    body = await api.gql(RESUME, change(grant, 2, "通过"), who="gz_admin")
    assert body["data"]["resumeGrant"]["grant"]["state"] == "active"
    assert allowed(await business(sessions, db_url), "gz-th-wushan", TH, "password_change")
    body = await api.gql(REVOKE, change(grant, 3, "撤销"), who="gd_admin")
    assert body["data"]["revokeGrant"]["grant"]["state"] == "revoked"
    assert not allowed(await business(sessions, db_url), "gz-th-wushan", TH, "password_change")
    async with sessions() as session:
        events = (
            await session.exec(
                select(AuditEvent.action, AuditEvent.actor)
                .where(AuditEvent.target_id == grant["id"])
                .order_by(AuditEvent.id)
            )
        ).all()
    assert [tuple(e) for e in events] == [
        ("grant.create", "principal:gz.admin"),
        ("grant.suspended", "principal:gz.operator"),
        ("grant.active", "principal:gz.admin"),
        ("grant.revoked", "principal:gd.admin"),
    ]


async def test_a_proposal_can_be_withdrawn(api, sessions):
    grant = await create(api, "gz_operator")
    body = await api.gql(REVOKE, change(grant, 1, "撤回"), who="gz_operator")
    assert body["data"]["revokeGrant"]["grant"]["state"] == "revoked"


@pytest.mark.parametrize("query", [SUSPEND, REVOKE])
@pytest.mark.parametrize(("who", "code"), [*OUTSIDERS, ("gz_approver", "FORBIDDEN")])
async def test_outsiders_cannot_suspend_or_revoke(no_approval, sessions, query, who, code):
    grant = await create(no_approval)
    before = await db_state(sessions)
    body = await call(no_approval, query, change(grant, 1), who)
    assert error_code(body) == code
    assert_only_denial(before, await db_state(sessions), who)


@pytest.mark.parametrize(("who", "code"), [*OUTSIDERS, ("gz_approver", "FORBIDDEN")])
async def test_outsiders_cannot_resume(no_approval, sessions, who, code):
    grant = await create(no_approval)
    await no_approval.gql(SUSPEND, change(grant, 1), who="gz_admin")
    before = await db_state(sessions)
    body = await call(no_approval, RESUME, change(grant, 2), who)
    assert error_code(body) == code
    assert_only_denial(before, await db_state(sessions), who)


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"reason": " "}, "reason"),
        ({"reason": "r" * 513}, "reason"),
        ({"id": "abc"}, "id"),
        ({"id": "9" * 30}, "id"),
    ],
)
async def test_bad_change_input(no_approval, sessions, variables, field):
    grant = await create(no_approval)
    before = await db_state(sessions)
    body = await no_approval.gql(SUSPEND, {"i": {**change(grant, 1)["i"], **variables}}, who="gz_admin")
    assert error_code(body) == "BAD_INPUT" and body["errors"][0]["extensions"]["field"] == field
    assert_only_denial(before, await db_state(sessions), "gz_admin")


async def test_stale_version_and_wrong_state_are_conflicts(no_approval, sessions):
    api = no_approval
    grant = await create(api)
    before = await db_state(sessions)
    body = await api.gql(SUSPEND, change(grant, 7), who="gz_admin")
    assert error_code(body) == "CONFLICT" and body["errors"][0]["extensions"]["currentVersion"] == 1
    assert body["errors"][0]["extensions"]["field"] == "expectedVersion"
    assert_only_denial(before, await db_state(sessions), "gz_admin")
    before = await db_state(sessions)
    assert error_code(await api.gql(RESUME, change(grant, 1), who="gz_admin")) == "CONFLICT"  # not suspended
    assert_only_denial(before, await db_state(sessions), "gz_admin")
    assert error_code(await api.gql(SUSPEND, change("999999", 1), who="gz_admin")) == "FORBIDDEN"


async def test_resume_rechecks_the_ceiling(no_approval, sessions):
    grant = await create(no_approval)
    await no_approval.gql(SUSPEND, change(grant, 1), who="gz_admin")
    async with sessions() as session, session.begin():
        await set_ceiling(session, GD, "grassroots_platform", ["info_inquiry"], actor="test")
    before = await db_state(sessions)
    body = await no_approval.gql(RESUME, change(grant, 2), who="gz_admin")
    assert error_code(body) == "CEILING_EXCEEDED" and body["errors"][0]["extensions"]["ceilingTenant"] == GD
    assert_only_denial(before, await db_state(sessions), "gz_admin")


# --- queries --------------------------------------------------------------------------------------


async def test_each_person_sees_the_grants_of_their_area(api):
    made = {
        "sz1": await create(api, "sz_admin", tenant=SZ, outletId="sz-ft-huafu"),
        "sz2": await create(api, "sz_admin", tenant=SZ, outletId="sz-ns-yuehai", service="info_inquiry"),
        "gz1": await create(api),
        "th1": await create(api, "th_admin", tenant=TH, outletId="gz-th-shipai", service="activation"),
        "gd1": await create(api, "gd_admin", tenant=GD, service="password_reset"),
    }

    async def ids(who, **variables):
        body = await api.gql(GRANTS, variables, who=who)
        assert "errors" not in body, body
        page = body["data"]["grants"]
        assert page["totalCount"] == len(page["edges"])
        return {e["node"]["id"] for e in page["edges"]}

    def of(*names):
        return {made[n]["id"] for n in names}

    assert await ids("gz_admin") == await ids("gz_auditor") == await ids("gz_approver") == of("gz1", "th1")
    assert await ids("th_admin") == of("th1")
    assert await ids("sz_admin") == of("sz1", "sz2")
    assert await ids("gd_admin") == of(*made)
    assert await ids("gd_admin", t=TH) == of("th1")
    assert await ids("gd_admin", s="info_inquiry") == of("sz2")
    # Guangzhou (and Tianhe below it) grant by two people; Guangdong and Shenzhen do not.
    assert await ids("gd_admin", st="proposed") == of("gz1", "th1")
    assert await ids("gd_admin", at=NOW) == of("sz1", "sz2", "gd1")
    assert await ids("gd_admin", at="2025-06-01T00:00:00Z") == set()  # before the windows start
    assert await ids("gd_admin", o="gz-th-wushan") == of("gz1", "gd1")
    assert await ids("gz_admin", o="gz-th-wushan") == of("gz1")  # not the province's grant


async def test_outlet_filter_includes_grants_to_its_kind(no_approval):
    kind = await create(no_approval, outletId=None, outletKind="grassroots_platform", service="info_inquiry")
    own = await create(no_approval)
    body = await no_approval.gql(GRANTS, {"o": "gz-th-wushan"}, who="gz_admin")
    assert {e["node"]["id"] for e in body["data"]["grants"]["edges"]} == {kind["id"], own["id"]}
    body = await no_approval.gql(GRANTS, {"o": "gz-hall-city"}, who="gz_admin")
    assert body["data"]["grants"]["totalCount"] == 0


async def test_keyset_pages_cover_every_grant_once(no_approval):
    services = ("password_change", "info_inquiry", "activation", "password_reset")
    made = [await create(no_approval, service=s) for s in services]
    seen, after = [], None
    while True:
        body = await no_approval.gql(GRANTS, {"first": 3, "after": after}, who="gz_admin")
        page = body["data"]["grants"]
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [g["id"] for g in made] and page["totalCount"] == 4


@pytest.mark.parametrize(
    ("who", "tenant"), [("gz_admin", SZ), ("th_admin", GZ), ("gz_admin", "cn/440000/440300/440399")]
)
async def test_grants_of_foreign_tenants_are_forbidden(api, sessions, who, tenant):
    before = await db_state(sessions)
    assert error_code(await api.gql(GRANTS, {"t": tenant}, who=who)) == "FORBIDDEN"
    assert_only_denial(before, await db_state(sessions), who)


async def test_one_grant(api):
    grant = await create(api)
    assert (await api.gql(GRANT, {"id": grant["id"]}, who="gd_admin"))["data"]["grant"] == grant
    assert error_code(await api.gql(GRANT, {"id": grant["id"]}, who="sz_admin")) == "FORBIDDEN"
    assert error_code(await api.gql(GRANT, {"id": grant["id"]}, who="th_admin")) == "FORBIDDEN"
    assert error_code(await api.gql(GRANT, {"id": grant["id"]})) == "UNAUTHENTICATED"


@pytest.mark.parametrize("query", [GRANT, SUSPEND, APPROVE])
async def test_a_missing_grant_and_a_foreign_one_are_answered_alike(api, sessions, query):
    """The existence oracle of the security review (issue 11, item 10): `grant(id: "9999")` answered
    null while a foreign grant answered FORBIDDEN naming the foreign tenant."""
    foreign = await create(api, "sz_admin", tenant=SZ, outletId="sz-ft-huafu")
    answers = []
    for gid in (foreign["id"], "424242"):
        variables = {
            GRANT: {"id": gid},
            SUSPEND: change(gid, 1),
            APPROVE: {"i": {"id": gid, "expectedVersion": 1}},
        }[query]
        before = await db_state(sessions)
        body = await api.gql(query, variables, who="gz_admin")
        assert error_code(body) == "FORBIDDEN", body
        answers.append(body["errors"][0]["message"].replace(gid, "ID"))
        assert SZ not in body["errors"][0]["message"]
        assert_only_denial(before, await db_state(sessions), "gz_admin")
    assert answers[0] == answers[1]


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"s": "teleportation"}, "service"),
        ({"after": "bm90LWFuLWlk"}, "after"),
        ({"t": "cn/440000/450100"}, "tenant"),
        ({"first": 1000}, "first"),
        ({"o": "o" * 65}, "outlet"),
        ({"at": "2026-06-01T00:00:00"}, "$at"),  # refused by the DateTime scalar: names the variable
    ],
)
async def test_bad_grant_filters(api, variables, field):
    body = await api.gql(GRANTS, variables, who="gd_admin")
    assert error_code(body) == "BAD_INPUT", body
    if field:
        assert body["errors"][0]["extensions"]["field"] == field
