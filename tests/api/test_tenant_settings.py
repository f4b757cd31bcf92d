"""Tenant settings through the API: inheritance, overriding, clearing, versions, who may change them."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from app.store.tables import AuditEvent, Tenant
from tests.api.conftest import error_code

GD = "cn/440000"
GZ = "cn/440000/440100"
TH = "cn/440000/440100/440106"

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


async def db_state(sessions) -> tuple[list, list]:
    async with sessions() as session:
        tenants = sorted(
            (t.path, t.two_person_approval, t.pin_lock_threshold, t.version, t.updated_at)
            for t in (await session.exec(select(Tenant))).all()
        )
        events = [
            (e.id, e.actor, e.action, e.decision)
            for e in (await session.exec(select(AuditEvent).order_by(AuditEvent.id))).all()
        ]
    return tenants, events


async def test_guangzhou_inherits_overrides_and_inherits_again(api, sessions):
    gz = await settings_of(api, GZ)
    assert gz["twoPersonApproval"] is None
    assert (gz["effectiveTwoPersonApproval"], gz["effectiveTwoPersonApprovalFrom"]) == (True, GD)
    # Setting it on Guangzhou overrides Guangdong, for Guangzhou and the districts below it.
    changed = await update(api, "gz_admin", tenant=GZ, twoPersonApproval=False, expectedVersion=gz["version"])
    assert changed["twoPersonApproval"] is False and changed["version"] == gz["version"] + 1
    assert (changed["effectiveTwoPersonApproval"], changed["effectiveTwoPersonApprovalFrom"]) == (False, GZ)
    tianhe = await settings_of(api, TH)
    assert (tianhe["effectiveTwoPersonApproval"], tianhe["effectiveTwoPersonApprovalFrom"]) == (False, GZ)
    assert (await settings_of(api, GD))["effectiveTwoPersonApproval"] is True
    # Clearing it restores inheritance.
    cleared = await update(
        api, "gz_admin", tenant=GZ, clearTwoPersonApproval=True, expectedVersion=changed["version"]
    )
    assert cleared["twoPersonApproval"] is None
    assert (cleared["effectiveTwoPersonApproval"], cleared["effectiveTwoPersonApprovalFrom"]) == (True, GD)
    assert (await settings_of(api, TH))["effectiveTwoPersonApprovalFrom"] == GD
    async with sessions() as session:
        events = (
            await session.exec(
                select(AuditEvent)
                .where(AuditEvent.action == "tenant_settings.update")
                .order_by(AuditEvent.id)
            )
        ).all()
    assert [(e.tenant, e.actor) for e in events] == [(GZ, "principal:gz.admin")] * 2
    details = [json.loads(e.detail) for e in events]
    assert details[0]["before"]["two_person_approval"] is None
    assert details[0]["after"]["two_person_approval"] is False
    assert details[1]["after"]["two_person_approval"] is None


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
    tenants, events = await db_state(sessions)
    variables = {"i": {"tenant": GZ, "twoPersonApproval": False, "expectedVersion": version}}
    body = await (api.gql(UPDATE, variables, who=who) if who else api.gql(UPDATE, variables))
    assert error_code(body) == code
    after_tenants, after_events = await db_state(sessions)
    assert after_tenants == tenants and after_events[: len(events)] == events
    added = after_events[len(events) :]
    expected = [] if who is None else [(f"principal:{who.replace('_', '.')}", "deny")]
    assert [(actor, decision) for _, actor, _, decision in added] == expected


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
    assert await db_state(sessions) == before


async def test_a_change_to_nothing_writes_nothing(api, sessions):
    gd = await settings_of(api, GD)
    before = await db_state(sessions)
    same = await update(api, "gd_admin", tenant=GD, twoPersonApproval=True, expectedVersion=gd["version"])
    assert same["version"] == gd["version"]
    assert await db_state(sessions) == before
