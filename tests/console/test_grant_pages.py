"""Registering an outlet, granting it a card service, a second person approving it, its partner key,
suspending the grant; over HTTP as a browser without JavaScript does. The partner API answers the
next request with what the console was told, and the abuse cases: a proposer's own queue, a form
without its token, another city's grant and a grant that does not exist answered alike."""

from __future__ import annotations

import re

import pytest

from app.ops.auth import authenticate
from app.ops.principals.admin import assign_role
from app.ops.principals.credentials import create_principal_with_token
from app.ops.principals.logins import set_password
from app.ops.tenants.apply import apply_tenant_files
from app.settings import Settings
from app.web import create_app
from tests.console.console_helpers import (
    PASSWORD,
    client,
    grant_state,
    hidden,
    main,
    partner_services,
    post_form,
)
from tests.livesrv import serve

DISTRICT = "cn/440000/440100/440106"
PHARMACY = {
    "id": "gz-ph-console",
    "name": "天河大药房（控制台测试）",
    "kind": "designated_pharmacy",
    "tenant": DISTRICT,
    "bank": "",
    "nbs_code": "",
    "address": "广州市天河区体育西路1号",
}


@pytest.fixture
async def base(db_url, sessions, tenants_dir, tmp_path):
    await apply_tenant_files(sessions, tenants_dir)
    for name, tenant, role in (
        ("gz.web", "cn/440000/440100", "city_admin"),
        ("gz.approver", "cn/440000/440100", "approver"),
        ("sz.web", "cn/440000/440300", "city_admin"),
    ):
        await create_principal_with_token(sessions, tenant_path=tenant, role=role, name=name)
        await set_password(sessions, name, PASSWORD)
    # The city's administrator also approves (allowed, reported as an anomaly): never their own.
    province = await create_principal_with_token(sessions, tenant_path="cn/440000", role="province_admin")
    async with sessions() as session:
        giver = await authenticate(session, province.token)
    await assign_role(sessions, giver, name="gz.web", tenant="cn/440000/440100", role="approver")
    settings = Settings(database_url=db_url, key_file=str(tmp_path / "keys.env"), audit_checkpoint_seconds=0)
    with serve(create_app(settings)) as url:
        yield url


def test_register_grant_approve_key_and_suspend(base):
    with client(base, "gz.web") as admin, client(base, "gz.approver") as approver:
        # A refused registration says which field and saves nothing.
        refused = post_form(
            admin, "/console/outlets/new", "/console/outlets/new", **dict(PHARMACY, name="", kind="casino")
        )
        assert refused.status_code == 400 and 'aria-invalid="true"' in refused.text
        assert 'value="广州市天河区体育西路1号"' in refused.text  # what was typed is kept
        assert admin.get("/console/outlets/gz-ph-console").status_code == 403

        made = post_form(admin, "/console/outlets/new", "/console/outlets/new", **PHARMACY)
        assert made.status_code == 303 and made.headers["location"] == "/console/outlets/gz-ph-console"
        outlet = admin.get("/console/outlets/gz-ph-console")
        assert (
            outlet.status_code == 200
            and "天河大药房（控制台测试）" in outlet.text
            and "定点药店" in outlet.text
        )

        # The grant form marks what the ceilings refuse before anything is saved.
        form = admin.get("/console/grants/new", params={"outlet": "gz-ph-console"})
        assert f'value="{DISTRICT}"' in form.text
        assert re.search(r'<option value="password_change"(?! disabled)[^>]*>', form.text)
        assert re.search(r'<option value="financial_activation" disabled>', form.text)
        above = post_form(
            admin,
            "/console/grants/new",
            "/console/grants/new",
            outlet="gz-ph-console",
            tenant=DISTRICT,
            service="info_inquiry",
            valid_from="2026-01-01",
            document_ref="穗人社函〔2026〕7号",
        )
        assert above.status_code == 409 and "CEILING_EXCEEDED" in above.text

        granted = post_form(
            admin,
            "/console/grants/new",
            "/console/grants/new",
            outlet="gz-ph-console",
            tenant=DISTRICT,
            service="password_change",
            valid_from="2026-01-01",
            valid_until="2030-12-31",
            document_ref="穗人社函〔2026〕7号",
        )
        assert granted.status_code == 303 and granted.headers["location"].endswith("?done=proposed")
        grant_id = re.search(r"/console/grants/(\d+)", granted.headers["location"]).group(1)
        assert grant_state(admin, grant_id) == "proposed"

        issued = post_form(
            admin, "/console/outlets/gz-ph-console", "/console/outlets/gz-ph-console/keys", days="30"
        )
        key = re.search(r'<p class="secret"><code>([^<]+)</code>', issued.text).group(1)
        assert issued.status_code == 200 and issued.headers["cache-control"] == "no-store"
        assert key not in admin.get("/console/outlets/gz-ph-console").text  # shown once
        assert "password_change" not in partner_services(base, key)

        # The proposer's own queue leaves it to someone else; the approver's holds it.
        own = admin.get("/console/approvals")
        assert f"/console/grants/{grant_id}" not in own.text and "其他审批人" in own.text
        queue = approver.get("/console/approvals")
        assert f'action="/console/approvals/{grant_id}"' in queue.text
        version = re.search(
            rf'/console/approvals/{grant_id}">\s*<input[^>]+>\s*<input type="hidden" '
            r'name="version" value="(\d+)"',
            queue.text,
        ).group(1)
        tokenless = approver.post(
            f"/console/approvals/{grant_id}", data={"decision": "approve", "version": version}
        )
        assert tokenless.status_code == 403 and grant_state(admin, grant_id) == "proposed"
        no_note = approver.post(
            f"/console/approvals/{grant_id}",
            data={"csrf": hidden(queue.text, "csrf"), "decision": "reject", "version": version},
        )
        assert no_note.status_code == 400 and grant_state(admin, grant_id) == "proposed"
        approved = approver.post(
            f"/console/approvals/{grant_id}",
            data={"csrf": hidden(queue.text, "csrf"), "decision": "approve", "version": version},
        )
        assert approved.status_code == 303 and grant_state(admin, grant_id) == "active"
        assert "password_change" in partner_services(base, key)  # in force for the very next request

        outlet = admin.get("/console/outlets/gz-ph-console")
        assert f'href="/console/grants/{grant_id}"' in outlet.text and "gz.approver" in outlet.text

        page = admin.get(f"/console/grants/{grant_id}")
        no_reason = admin.post(
            f"/console/grants/{grant_id}/suspend",
            data={"csrf": hidden(page.text, "csrf"), "version": "2", "reason": ""},
        )
        assert no_reason.status_code == 400 and grant_state(admin, grant_id) == "active"
        for hostile in ({"version": "9" * 5000, "reason": "x"}, {"version": "2", "reason": "停\x00用\u202e"}):
            refused = admin.post(
                f"/console/grants/{grant_id}/suspend", data={"csrf": hidden(page.text, "csrf"), **hostile}
            )
            assert refused.status_code == 400 and grant_state(admin, grant_id) == "active"
        unknown = admin.post(
            f"/console/grants/{grant_id}/delete", data={"csrf": hidden(page.text, "csrf"), "version": "2"}
        )
        assert unknown.status_code == 400 and grant_state(admin, grant_id) == "active"
        suspended = admin.post(
            f"/console/grants/{grant_id}/suspend",
            data={"csrf": hidden(page.text, "csrf"), "version": "2", "reason": "药店整改"},
        )
        assert suspended.status_code == 303 and grant_state(admin, grant_id) == "suspended"
        assert "password_change" not in partner_services(base, key)
        stale = admin.post(
            f"/console/grants/{grant_id}/resume",
            data={"csrf": hidden(page.text, "csrf"), "version": "2", "reason": "整改完成"},
        )
        assert stale.status_code == 409 and grant_state(admin, grant_id) == "suspended"


def test_another_city_sees_neither_the_grant_nor_the_outlet(base):
    with client(base, "gz.web") as admin, client(base, "sz.web") as other:
        post_form(admin, "/console/outlets/new", "/console/outlets/new", **PHARMACY)
        granted = post_form(
            admin,
            "/console/grants/new",
            "/console/grants/new",
            outlet="gz-ph-console",
            tenant=DISTRICT,
            service="activation",
            valid_from="2026-01-01",
            document_ref="穗人社函〔2026〕8号",
        )
        grant_id = re.search(r"/console/grants/(\d+)", granted.headers["location"]).group(1)
        theirs, missing = other.get(f"/console/grants/{grant_id}"), other.get("/console/grants/987654")
        assert theirs.status_code == missing.status_code == 403
        assert main(theirs.text) == main(missing.text)
        outlet, no_outlet = other.get("/console/outlets/gz-ph-console"), other.get("/console/outlets/gz-none")
        assert outlet.status_code == no_outlet.status_code == 403
        assert main(outlet.text) == main(no_outlet.text)
        page = other.get("/console/grants")
        revoke = other.post(
            f"/console/grants/{grant_id}/revoke",
            data={"csrf": hidden(page.text, "csrf"), "version": "1", "reason": "越权"},
        )
        assert revoke.status_code == 403 and grant_state(admin, grant_id) == "proposed"
        assert f"/console/grants/{grant_id}" not in other.get("/console/approvals").text
        # Another city's department in the grant form is refused before any grant is made.
        form = other.get("/console/grants/new", params={"kind": "designated_pharmacy", "tenant": DISTRICT})
        assert form.status_code == 403
