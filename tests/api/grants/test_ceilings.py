"""Ceilings through the API: who may set them, what they bind, and what shrinking one does."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.store.tables import AuditEvent, Grant
from tests.api.conftest import error_code
from tests.api.grant_helpers import (
    GD,
    GZ,
    OUTSIDERS,
    TH,
    allowed,
    business,
    call,
    create,
    db_state,
)
from tests.audit_helpers import assert_only_denial

SET_CEILING = (
    "mutation($i: SetCeilingInput!) { setCeiling(input: $i) {"
    " ceiling { tenant outletKind services version setBy updatedAt }"
    " suspendedCount suspendedGrants { id tenant state stateReason version } } }"
)
CEILINGS = (
    "query($t: String!) { ceilings(tenant: $t) { tenant"
    " own { tenant outletKind services version setBy }"
    " effective { outletKind services cutBy { service tenant } } } }"
)


def ceiling(tenant=GZ, kind="grassroots_platform", services=("info_inquiry",), **kw) -> dict:
    return {"i": {"tenant": tenant, "outletKind": kind, "services": list(services), **kw}}


@pytest.mark.usefixtures("no_approval")
async def test_shrinking_a_ceiling_suspends_what_no_longer_fits(api, sessions, db_url):
    city = await create(api, "th_admin", tenant=TH, outletId="gz-th-wushan")  # Tianhe decides alone now
    inquiry = await create(api, "th_admin", tenant=TH, outletId="gz-th-shipai", service="info_inquiry")
    # Guangzhou's own grant: not bound by the ceiling Guangzhou sets for those below it.
    own = await create(api, outletId="gz-th-wushan-huajing")
    assert allowed(await business(sessions, db_url), "gz-th-wushan", TH, "password_change")
    body = await api.gql(SET_CEILING, ceiling(), who="gz_admin")
    result = body["data"]["setCeiling"]
    assert result["ceiling"] | {"updatedAt": None} == {
        "tenant": GZ,
        "outletKind": "grassroots_platform",
        "services": ["info_inquiry"],
        "version": 1,
        "setBy": "gz.admin",
        "updatedAt": None,
    }
    assert result["suspendedCount"] == 1
    [suspended] = result["suspendedGrants"]
    assert (suspended["id"], suspended["state"], suspended["version"]) == (city["id"], "suspended", 2)
    assert GZ in suspended["stateReason"]
    async with sessions() as session:
        states = {str(g.id): g.state for g in (await session.exec(select(Grant))).all()}
        actions = (await session.exec(select(AuditEvent.action).order_by(AuditEvent.id))).all()
    assert states == {city["id"]: "suspended", inquiry["id"]: "active", own["id"]: "active"}
    assert actions[-2:] == ["grant.suspended", "ceiling.set"]
    state = await business(sessions, db_url)
    assert not allowed(state, "gz-th-wushan", TH, "password_change")
    assert allowed(state, "gz-th-shipai", TH, "info_inquiry")


async def test_shrinking_rejects_proposals_that_no_longer_fit(api, sessions):
    proposal = await create(api, "th_admin", tenant=TH, outletId="gz-th-wushan")
    assert proposal["state"] == "proposed"
    result = (await api.gql(SET_CEILING, ceiling(), who="gz_admin"))["data"]["setCeiling"]
    assert [(g["id"], g["state"]) for g in result["suspendedGrants"]] == [(proposal["id"], "rejected")]
    async with sessions() as session:
        event = (await session.exec(select(AuditEvent).where(AuditEvent.action == "grant.reject"))).one()
    assert (event.tenant, event.target_id) == (TH, proposal["id"])


async def test_ceilings_query_shows_own_and_effective(api):
    await api.gql(SET_CEILING, ceiling(GD, services=["info_inquiry", "password_change"]), who="gd_admin")
    await api.gql(SET_CEILING, ceiling(GZ), who="gz_admin")
    body = await api.gql(CEILINGS, {"t": TH}, who="th_admin")
    view = body["data"]["ceilings"]
    assert view["tenant"] == TH and view["own"] == []
    grassroots = next(e for e in view["effective"] if e["outletKind"] == "grassroots_platform")
    assert grassroots["services"] == ["info_inquiry"]
    assert grassroots["cutBy"] == [
        {"service": "activation", "tenant": GD},
        {"service": "password_change", "tenant": GZ},
        {"service": "password_reset", "tenant": GD},
    ]
    hall = next(e for e in view["effective"] if e["outletKind"] == "hrss_hall")
    assert len(hall["services"]) == 12 and hall["cutBy"] == []
    body = await api.gql(CEILINGS, {"t": GZ}, who="gz_operator")
    gz = body["data"]["ceilings"]
    assert [(c["outletKind"], c["services"], c["setBy"]) for c in gz["own"]] == [
        ("grassroots_platform", ["info_inquiry"], "gz.admin")
    ]
    # Guangzhou's own grants are bound by the province only, not by the ceiling it set itself.
    own = next(e for e in gz["effective"] if e["outletKind"] == "grassroots_platform")
    assert own["services"] == ["info_inquiry", "password_change"]


@pytest.mark.parametrize(
    ("who", "tenant"), [("sz_admin", GZ), ("th_admin", GZ), ("gz_admin", "cn/440000/440300/440399")]
)
async def test_ceilings_of_foreign_tenants_are_forbidden(api, sessions, who, tenant):
    before = await db_state(sessions)
    assert error_code(await api.gql(CEILINGS, {"t": tenant}, who=who)) == "FORBIDDEN"
    assert_only_denial(before, await db_state(sessions), who)
    assert error_code(await api.gql(CEILINGS, {"t": GZ})) == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    ("who", "code"), [*OUTSIDERS, ("gz_operator", "FORBIDDEN"), ("gz_approver", "FORBIDDEN")]
)
async def test_outsiders_cannot_set_a_ceiling(api, sessions, who, code):
    before = await db_state(sessions)
    assert error_code(await call(api, SET_CEILING, ceiling(), who)) == code
    assert_only_denial(before, await db_state(sessions), who)


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"tenant": "cn/440000/450100"}, "tenant"),
        ({"outletKind": "spaceport"}, "outletKind"),
        ({"outletKind": "k" * 40}, "outletKind"),
        ({"services": ["info_inquiry", "teleportation"]}, "services"),
        ({"services": ["x" * 40]}, "services"),
        ({"services": ["info_inquiry"] * 33}, "services"),
    ],
)
async def test_bad_ceiling_input_writes_nothing(api, sessions, variables, field):
    before = await db_state(sessions)
    body = await api.gql(SET_CEILING, {"i": {**ceiling()["i"], **variables}}, who="gz_admin")
    assert error_code(body) == "BAD_INPUT", body
    assert body["errors"][0]["extensions"]["field"] == field
    assert_only_denial(before, await db_state(sessions), "gz_admin")


async def test_expected_version_guards_concurrent_edits(api, sessions):
    first = await api.gql(SET_CEILING, ceiling(expectedVersion=0), who="gz_admin")
    assert first["data"]["setCeiling"]["ceiling"]["version"] == 1
    before = await db_state(sessions)
    stale = await api.gql(SET_CEILING, ceiling(services=[], expectedVersion=0), who="gz_admin")
    assert error_code(stale) == "CONFLICT" and stale["errors"][0]["extensions"]["currentVersion"] == 1
    assert_only_denial(before, await db_state(sessions), "gz_admin")
    body = await api.gql(SET_CEILING, ceiling(services=[], expectedVersion=1), who="gz_admin")
    assert body["data"]["setCeiling"]["ceiling"] == {**body["data"]["setCeiling"]["ceiling"], "version": 2}
    assert body["data"]["setCeiling"]["ceiling"]["services"] == []
