"""Revoking from a page names what is revoked twice (the page's outlet or person, and the key or token):
a key revoked from another outlet's page, or a token from another person's page, is answered like one
that does not exist and stays valid; from its own page it is revoked and refused at the next call."""

from __future__ import annotations

import re

import httpx
import pytest

from app.ops.principals.credentials import create_principal_with_token
from app.ops.principals.logins import set_password
from app.ops.tenants.apply import apply_tenant_files
from app.settings import Settings
from app.web import create_app
from tests.console.console_helpers import PASSWORD, client, hidden, partner_services, post_form
from tests.livesrv import serve

DISTRICT = "cn/440000/440100/440106"


@pytest.fixture
async def base(db_url, sessions, tenants_dir, tmp_path):
    await apply_tenant_files(sessions, tenants_dir)
    await create_principal_with_token(
        sessions, tenant_path="cn/440000/440100", role="city_admin", name="gz.web"
    )
    await set_password(sessions, "gz.web", PASSWORD)
    approver = await create_principal_with_token(
        sessions, tenant_path="cn/440000/440100", role="approver", name="gz.approver"
    )
    settings = Settings(database_url=db_url, key_file=str(tmp_path / "keys.env"), audit_checkpoint_seconds=0)
    with serve(create_app(settings)) as url:
        yield url, approver


def _outlet_with_key(admin: httpx.Client, outlet_id: str) -> tuple[str, int]:
    made = post_form(
        admin,
        "/console/outlets/new",
        "/console/outlets/new",
        id=outlet_id,
        name=f"药房{outlet_id}",
        kind="designated_pharmacy",
        tenant=DISTRICT,
    )
    assert made.status_code == 303
    issued = post_form(
        admin, f"/console/outlets/{outlet_id}", f"/console/outlets/{outlet_id}/keys", days="30"
    )
    key = re.search(r'<p class="secret"><code>([^<]+)</code>', issued.text).group(1)
    key_id = re.search(rf'action="/console/outlets/{outlet_id}/keys/(\d+)/revoke"', issued.text).group(1)
    return key, int(key_id)


def test_a_key_is_revoked_from_its_own_outlets_page_only(base):
    url, _ = base
    with client(url, "gz.web") as admin:
        key, key_id = _outlet_with_key(admin, "gz-ph-a")
        _outlet_with_key(admin, "gz-ph-b")
        before = partner_services(url, key)
        page = admin.get("/console/outlets/gz-ph-b")
        elsewhere = admin.post(
            f"/console/outlets/gz-ph-b/keys/{key_id}/revoke",
            data={"csrf": hidden(page.text, "csrf"), "reason": "钥匙泄露"},
        )
        missing = admin.post(
            "/console/outlets/gz-ph-b/keys/987654/revoke",
            data={"csrf": hidden(page.text, "csrf"), "reason": "钥匙泄露"},
        )
        assert elsewhere.status_code == missing.status_code == 403
        assert partner_services(url, key) == before  # the key still answers
        own = admin.post(
            f"/console/outlets/gz-ph-a/keys/{key_id}/revoke",
            data={"csrf": hidden(page.text, "csrf"), "reason": "钥匙泄露"},
        )
        assert own.status_code == 303
        refused = httpx.post(
            f"{url}/graphql", json={"query": "{ myPermissions { service } }"}, headers={"x-api-key": key}
        )
        assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_a_token_is_revoked_from_its_owners_page_only(base):
    url, approver = base
    with client(url, "gz.web") as admin:
        page = admin.get("/console/people/gz.approver")
        assert f"/tokens/{approver.token_id}/revoke" in page.text
        elsewhere = admin.post(
            f"/console/people/gz.web/tokens/{approver.token_id}/revoke",
            data={"csrf": hidden(page.text, "csrf")},
        )
        missing = admin.post(
            "/console/people/gz.web/tokens/987654/revoke", data={"csrf": hidden(page.text, "csrf")}
        )
        assert elsewhere.status_code == missing.status_code != 303
        still = httpx.post(
            f"{url}/graphql",
            json={"query": "{ me { name } }"},
            headers={"authorization": f"Bearer {approver.token}"},
        )
        assert still.json()["data"]["me"]["name"] == "gz.approver"
        own = admin.post(
            f"/console/people/gz.approver/tokens/{approver.token_id}/revoke",
            data={"csrf": hidden(page.text, "csrf")},
        )
        assert own.status_code == 303
        gone = httpx.post(
            f"{url}/graphql",
            json={"query": "{ me { name } }"},
            headers={"authorization": f"Bearer {approver.token}"},
        )
        assert gone.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
