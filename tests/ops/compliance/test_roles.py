"""Who held which role in an area at a time: removed roles and deactivated people still answer for
the time they held, roles above the area reach into it, and an auditor sees only their own subtree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.ops.auth import authenticate
from app.ops.compliance.roles import role_holders
from app.ops.errors import OpsError
from app.ops.principals.admin import assign_role, create_principal, deactivate_principal, remove_role
from app.ops.principals.credentials import create_principal_with_token

GD, GZ, TH, SZ = "cn/440000", "cn/440000/440100", "cn/440000/440100/440106", "cn/440000/440300"


async def person(sessions, tenant: str, role: str):
    issued = await create_principal_with_token(sessions, tenant_path=tenant, role=role)
    async with sessions() as session:
        return await authenticate(session, issued.token)


def held(answer) -> set[tuple[str, str, str]]:
    return {(r.name, r.role, r.tenant) for r in answer.holders}


async def test_removed_roles_and_deactivated_people_answer_for_their_time(sessions, auditor):
    admin = await person(sessions, GD, "province_admin")
    await create_principal(sessions, admin, name="gz-ops", tenant=GZ, role="operator")
    await create_principal(sessions, admin, name="sz-ops", tenant=SZ, role="operator")
    await assign_role(sessions, admin, name="gz-ops", tenant=TH, role="approver")
    both = datetime.now(UTC)
    await remove_role(sessions, admin, name="gz-ops", tenant=TH, role="approver")
    await deactivate_principal(sessions, admin, name="sz-ops", reason="left the department")
    after = datetime.now(UTC)

    then = await role_holders(sessions, auditor, GD, both)
    assert {("gz-ops", "operator", GZ), ("gz-ops", "approver", TH), ("sz-ops", "operator", SZ)} <= held(then)
    (approver,) = [r for r in then.holders if r.role == "approver" and r.name == "gz-ops"]
    assert approver.added_by == admin.label and approver.removed_by == admin.label
    assert approver.added_at <= both < approver.removed_at
    (left,) = [r for r in then.holders if r.name == "sz-ops"]
    assert left.removed_at is not None and left.removed_by is None  # deactivated, not taken

    now = await role_holders(sessions, auditor, GD, after)
    assert ("gz-ops", "operator", GZ) in held(now)
    assert not {("gz-ops", "approver", TH), ("sz-ops", "operator", SZ)} & held(now)
    # One role, one area: Tianhe's approvers then, with the province's roles that reach into it.
    tianhe = await role_holders(sessions, auditor, TH, both, role="approver")
    assert {r.tenant for r in tianhe.holders} <= {"cn", GD, GZ, TH}
    assert ("gz-ops", "approver", TH) in held(tianhe)
    assert all(r.role == "approver" for r in tianhe.holders)
    assert not any(r.tenant == SZ for r in (await role_holders(sessions, auditor, GZ, both)).holders)


async def test_roles_are_asked_about_in_ones_own_area_with_checked_input(sessions, auditor):
    local = await person(sessions, GZ, "auditor")
    refusals = [
        (role_holders(sessions, local, SZ), "FORBIDDEN"),
        (role_holders(sessions, local, "cn/110000"), "FORBIDDEN"),
        (role_holders(sessions, auditor, "cn/440000/440100/440199"), "NOT_FOUND"),
        (role_holders(sessions, auditor, GD, role="root\x00"), "BAD_INPUT"),
        (role_holders(sessions, auditor, GD, role="superuser"), "BAD_INPUT"),
        (role_holders(sessions, auditor, GD, datetime.now(UTC) + timedelta(days=1)), "BAD_INPUT"),
        (role_holders(sessions, auditor, GD, datetime(2001, 1, 1, tzinfo=UTC)), "BAD_INPUT"),
        (role_holders(sessions, auditor, GD, datetime(2026, 3, 3)), "BAD_INPUT"),
    ]
    for call, code in refusals:
        with pytest.raises(OpsError) as refused:
            await call
        assert refused.value.code == code
