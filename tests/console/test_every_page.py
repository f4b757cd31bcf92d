"""Every page of the console, for a province administrator on the demo data, in Chinese and in
English: answered (200) with its heading, every visible form control labelled (a <label for> or an
aria-label), every form that changes something carrying its token, and nothing loaded from elsewhere."""

from __future__ import annotations

import re
import secrets

import pytest

from app.ops.demo.generate import generate
from app.ops.principals.credentials import create_principal_with_token
from app.ops.principals.logins import set_password
from app.ops.tenants.apply import apply_tenant_files
from app.settings import Settings
from app.store.crypto import FieldCipher
from app.web import create_app
from tests.console.console_helpers import PASSWORD, client, post_form
from tests.livesrv import serve

PAGES = (
    "/console/",
    "/console/outlets",
    "/console/outlets?search=天河",
    "/console/outlets/new",
    "/console/outlets/import",
    "/console/outlets/gz-th-wushan",
    "/console/grants",
    "/console/grants/new?outlet=gz-th-wushan",
    "/console/grants/bulk",
    "/console/grants/1",
    "/console/approvals",
    "/console/ceilings",
    "/console/people",
    "/console/people/new",
    "/console/people/gd.web",
    "/console/audit",
    "/console/who-can?tenant=cn/440000/440100&service=activation",
    "/console/what-can?outlet=gz-th-wushan",
    "/console/grant-history",
    "/console/anomalies",
)
CONTROL = re.compile(r"<(input|select|textarea)\b([^>]*)>")


@pytest.fixture
async def base(db_url, sessions, tenants_dir, tmp_path):
    await apply_tenant_files(sessions, tenants_dir)
    await generate(
        sessions, FieldCipher(secrets.token_bytes(32), secrets.token_bytes(32)), cards=20, outlets=60, seed=5
    )
    await create_principal_with_token(sessions, tenant_path="cn/440000", role="province_admin", name="gd.web")
    await set_password(sessions, "gd.web", PASSWORD)
    settings = Settings(database_url=db_url, key_file=str(tmp_path / "keys.env"), audit_checkpoint_seconds=0)
    with serve(create_app(settings)) as url:
        yield url


def unlabelled(page: str) -> list[str]:
    labelled = set(re.findall(r'<label[^>]*\bfor="([^"]+)"', page))
    found = []
    for _, attributes in CONTROL.findall(page):
        if 'type="hidden"' in attributes or "aria-label=" in attributes:
            continue
        control = re.search(r'\bid="([^"]+)"', attributes)
        if control is None or control.group(1) not in labelled:
            found.append(attributes.strip()[:60])
    return found


def test_every_page_in_both_languages(base):
    with client(base, "gd.web") as browser:
        granted = post_form(
            browser,
            "/console/grants/new",
            "/console/grants/new",
            outlet="gz-th-wushan",
            tenant="cn/440000",
            service="activation",
            valid_from="2026-01-01",
            document_ref="粤人社函〔2026〕1号",
        )
        assert granted.headers["location"].startswith("/console/grants/1?")
        for language, heading_text in (("zh-CN", r"[\u4e00-\u9fff]"), ("en", r"[A-Za-z]")):
            browser.headers["accept-language"] = language
            for url in PAGES:
                page = browser.get(url)
                assert page.status_code == 200, (url, language, page.status_code)
                heading = re.search(r"<h1>(.*?)</h1>", page.text, re.S)
                assert heading and re.search(heading_text, heading.group(1)), (url, language)
                assert unlabelled(page.text) == [], (url, unlabelled(page.text))
                for form in re.findall(r'<form[^>]*method="post".*?</form>', page.text, re.S):
                    assert 'name="csrf"' in form, (url, form[:80])
                assert not re.search(r'(src|href)="(https?:)?//', page.text), url
