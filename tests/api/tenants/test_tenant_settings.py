"""Tenant settings through the API: inheritance, overriding, clearing, versions, who may change them."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from app.store.tables import AuditEvent, Tenant
from tests.api.conftest import error_code
from tests.api.grant_helpers import GRANT_SERVICE, grant_input
from tests.audit_helpers import assert_only_denial

GD = "cn/440000"
GZ = "cn/440000/440100"
TH = "cn/440000/440100/440106"
SZ = "cn/440000/440300"
NS = "cn/440000/440300/440305"

SETTINGS = (
    "twoPersonApproval pinLockThreshold version effectiveTwoPersonApproval effectiveTwoPersonApprovalFrom"
    " effectivePinLockThreshold effectivePinLockThresholdFrom"
)
TENANT = "query($p: String!) { tenant(path: $p) { " + SETTINGS + " } }"
UPDATE = (
    "mutation($i: UpdateTenantSettingsInput!) { updateTenantSettings(input: $i) { tenant { path "
    + SETTINGS
    + " } } }"
)


async def settings_of(api, path: str, who: str = "gd_admin") -> dict:
    body = await api.gql(TENANT, {"p": path}, who=who)
    assert "errors" not in body, body
    return body["data"]["tenant"]


async def update(api, who: str, **fields) -> dict:
    body = await api.gql(UPDATE, {"i": fields}, who=who)
    assert "errors" not in body, body
    return body["data"]["updateTenantSettings"]["tenant"]


async def db_state(sessions) -> dict:
    async with sessions() as session:
        tenants = sorted(
            (t.path, t.two_person_approval, t.pin_lock_threshold, t.version, t.updated_at)
            for t in (await session.exec(select(Tenant))).all()
        )
        events = [
            (e.id, e.actor, e.action, e.decision)
            for e in (await session.exec(select(AuditEvent).order_by(AuditEvent.id))).all()
        ]
    return {"tenants": tenants, "events": events}


async def test_two_person_approval_is_tightened_below_never_loosened(api, sessions):
    gz = await settings_of(api, GZ)
    assert (
        gz["twoPersonApproval"],
        gz["effectiveTwoPersonApproval"],
        gz["effectiveTwoPersonApprovalFrom"],
    ) == (
        True,
        True,
        GZ,
    )
    tianhe = await settings_of(api, TH)
    assert (tianhe["effectiveTwoPersonApproval"], tianhe["effectiveTwoPersonApprovalFrom"]) == (True, GZ)
    # The attack of the security review: a district switches off for itself what its city requires.
    before = await db_state(sessions)
    body = await api.gql(
        UPDATE,
        {"i": {"tenant": TH, "twoPersonApproval": False, "expectedVersion": tianhe["version"]}},
        who="th_admin",
    )
    assert error_code(body) == "FORBIDDEN" and GZ in body["errors"][0]["message"], body
    assert body["errors"][0]["extensions"]["field"] == "twoPersonApproval"
    assert_only_denial(before, await db_state(sessions), "th_admin")
    # Guangzhou, which set it, may turn it off for itself and those below it; clearing restores it.
    changed = await update(api, "gz_admin", tenant=GZ, twoPersonApproval=False, expectedVersion=gz["version"])
    assert (changed["effectiveTwoPersonApproval"], changed["effectiveTwoPersonApprovalFrom"]) == (False, GZ)
    assert (await settings_of(api, TH))["effectiveTwoPersonApproval"] is False
    # A district may tighten what it inherits.
    tightened = await update(
        api, "th_admin", tenant=TH, twoPersonApproval=True, expectedVersion=tianhe["version"]
    )
    assert (tightened["effectiveTwoPersonApproval"], tightened["effectiveTwoPersonApprovalFrom"]) == (
        True,
        TH,
    )
    # Once the province requires it, no explicit "off" below loosens it (Shenzhen's own false included).
    gd = await settings_of(api, GD)
    await update(api, "gd_admin", tenant=GD, twoPersonApproval=True, expectedVersion=gd["version"])
    for path in (GZ, SZ, NS):
        got = await settings_of(api, path)
        assert (got["effectiveTwoPersonApproval"], got["effectiveTwoPersonApprovalFrom"]) == (True, GD), path
    nanshan = await settings_of(api, NS)
    body = await api.gql(
        UPDATE,
        {"i": {"tenant": NS, "twoPersonApproval": False, "expectedVersion": nanshan["version"]}},
        who="sz_admin",
    )
    assert error_code(body) == "FORBIDDEN" and GD in body["errors"][0]["message"]
    cleared = await update(
        api, "gz_admin", tenant=GZ, clearTwoPersonApproval=True, expectedVersion=changed["version"]
    )
    assert cleared["twoPersonApproval"] is None
    assert (cleared["effectiveTwoPersonApproval"], cleared["effectiveTwoPersonApprovalFrom"]) == (True, GD)
    async with sessions() as session:
        events = (
            await session.exec(
                select(AuditEvent)
                .where(AuditEvent.action == "tenant_settings.update", AuditEvent.decision.is_(None))
                .order_by(AuditEvent.id)
            )
        ).all()
    assert [(e.tenant, e.actor) for e in events] == [
        (GZ, "principal:gz.admin"),
        (TH, "principal:th.admin"),
        (GD, "principal:gd.admin"),
        (GZ, "principal:gz.admin"),
    ]
    details = [json.loads(e.detail) for e in events]
    assert details[0]["before"]["two_person_approval"] is True
    assert details[0]["after"]["two_person_approval"] is False
    assert details[3]["after"]["two_person_approval"] is None


async def test_a_shenzhen_grant_is_proposed_once_guangdong_requires_two_people(api, sessions):
    gd = await settings_of(api, GD)
    await update(api, "gd_admin", tenant=GD, twoPersonApproval=True, expectedVersion=gd["version"])
    body = await api.gql(GRANT_SERVICE, {"i": grant_input(tenant=SZ, outletId="sz-ft-huafu")}, who="sz_admin")
    assert body["data"]["grantService"]["grant"]["state"] == "proposed", body


async def test_pin_lock_threshold_own_and_inherited(api):
    tianhe = await settings_of(api, TH)
    assert (tianhe["pinLockThreshold"], tianhe["effectivePinLockThresholdFrom"]) == (5, TH)
    gz = await settings_of(api, GZ)
    assert (gz["effectivePinLockThreshold"], gz["effectivePinLockThresholdFrom"]) == (3, "cn")
    changed = await update(api, "gz_admin", tenant=GZ, pinLockThreshold=4, expectedVersion=gz["version"])
    assert (changed["effectivePinLockThreshold"], changed["effectivePinLockThresholdFrom"]) == (4, GZ)
    # Tianhe's own value still wins below Guangzhou; clearing it there falls back to Guangzhou's.
    assert (await settings_of(api, TH))["effectivePinLockThreshold"] == 5
    cleared = await update(
        api, "th_admin", tenant=TH, clearPinLockThreshold=True, expectedVersion=tianhe["version"]
    )
    assert (cleared["effectivePinLockThreshold"], cleared["effectivePinLockThresholdFrom"]) == (4, GZ)


async def test_effective_settings_in_a_list(api):
    body = await api.gql(
        '{ tenants(under: "cn/440000") { edges { node { path effectiveTwoPersonApproval'
        " effectivePinLockThreshold } } } }",
        who="gd_admin",
    )
    nodes = {e["node"]["path"]: e["node"] for e in body["data"]["tenants"]["edges"]}
    assert nodes[GZ]["effectiveTwoPersonApproval"] is True
    assert nodes["cn/440000/440300"]["effectiveTwoPersonApproval"] is False  # Shenzhen opts out
    assert nodes["cn/440000/440300/440305"]["effectiveTwoPersonApproval"] is False
    assert nodes[TH]["effectivePinLockThreshold"] == 5 and nodes[GZ]["effectivePinLockThreshold"] == 3


@pytest.mark.parametrize(
    ("who", "code"),
    [
        ("sz_admin", "FORBIDDEN"),  # sibling city
        ("th_admin", "FORBIDDEN"),  # a district acting on its city
        ("gz_auditor", "FORBIDDEN"),
        ("gz_operator", "FORBIDDEN"),
        (None, "UNAUTHENTICATED"),
    ],
)
async def test_only_administrators_of_the_subtree_change_settings(api, sessions, who, code):
    version = (await settings_of(api, GZ))["version"]
    before = await db_state(sessions)
    variables = {"i": {"tenant": GZ, "twoPersonApproval": False, "expectedVersion": version}}
    body = await (api.gql(UPDATE, variables, who=who) if who else api.gql(UPDATE, variables))
    assert error_code(body) == code
    assert_only_denial(before, await db_state(sessions), who)


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"pinLockThreshold": 0}, "BAD_INPUT", "pinLockThreshold"),
        ({"pinLockThreshold": 11}, "BAD_INPUT", "pinLockThreshold"),
        ({"twoPersonApproval": True, "clearTwoPersonApproval": True}, "BAD_INPUT", "twoPersonApproval"),
        ({"pinLockThreshold": 4, "clearPinLockThreshold": True}, "BAD_INPUT", "pinLockThreshold"),
        ({"tenant": "cn/440000/450100", "pinLockThreshold": 4}, "BAD_INPUT", "tenant"),
        ({"tenant": "cn/" + "4" * 1000, "pinLockThreshold": 4}, "BAD_INPUT", "tenant"),
        ({"tenant": "cn/440000/440100/440113", "pinLockThreshold": 4}, "NOT_FOUND", None),
        ({"pinLockThreshold": 4, "expectedVersion": 99}, "CONFLICT", "expectedVersion"),
    ],
)
async def test_bad_settings_change_nothing(api, sessions, fields, code, field):
    version = (await settings_of(api, GZ))["version"]
    before = await db_state(sessions)
    body = await api.gql(UPDATE, {"i": {"tenant": GZ, "expectedVersion": version} | fields}, who="gz_admin")
    assert error_code(body) == code
    assert body["errors"][0]["extensions"].get("field") == field
    assert_only_denial(before, await db_state(sessions), "gz_admin")


async def test_a_change_to_nothing_writes_nothing(api, sessions):
    gz = await settings_of(api, GZ)
    before = await db_state(sessions)
    same = await update(api, "gz_admin", tenant=GZ, twoPersonApproval=True, expectedVersion=gz["version"])
    assert same["version"] == gz["version"]
    assert await db_state(sessions) == before
