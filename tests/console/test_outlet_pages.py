"""The outlets page: one's own area only, search, filters, pages of 50 that follow each other without
overlap, and a department outside the area refused while one inside that has no outlets is empty."""

from __future__ import annotations

import re
import secrets

import httpx
import pytest

from app.ops.demo.generate import generate
from app.ops.principals.credentials import create_principal_with_token
from app.ops.principals.logins import set_password
from app.ops.tenants.apply import apply_tenant_files
from app.settings import Settings
from app.store.crypto import FieldCipher
from app.web import create_app
from tests.console.console_helpers import PASSWORD, log_in
from tests.livesrv import serve

CODE = re.compile(r'<td><a href="/console/outlets/[a-z0-9._-]+"><code>([a-z0-9._-]+)</code></a></td>')


@pytest.fixture
async def base(db_url, sessions, tenants_dir, tmp_path):
    await apply_tenant_files(sessions, tenants_dir)
    await generate(
        sessions, FieldCipher(secrets.token_bytes(32), secrets.token_bytes(32)), cards=0, outlets=150, seed=3
    )
    for name, tenant, role in (
        ("gz.web", "cn/440000/440100", "city_admin"),
        ("gd.web", "cn/440000", "province_admin"),
    ):
        await create_principal_with_token(sessions, tenant_path=tenant, role=role, name=name)
        await set_password(sessions, name, PASSWORD)
    settings = Settings(database_url=db_url, key_file=str(tmp_path / "keys.env"), audit_checkpoint_seconds=0)
    with serve(create_app(settings)) as url:
        yield url


def test_a_city_sees_its_own_outlets_searched_and_filtered(base):
    with httpx.Client(base_url=base, headers={"accept-language": "zh-CN"}, timeout=20) as client:
        log_in(client, "gz.web")
        page = client.get("/console/outlets")
        assert page.status_code == 200 and "网点" in page.text
        departments = re.findall(r"<td><code>(cn/[0-9/]+)</code></td>", page.text)
        assert departments and all(d.startswith("cn/440000/440100") for d in departments)
        found = client.get("/console/outlets", params={"search": "wushan"})
        assert CODE.findall(found.text) == ["gz-th-wushan", "gz-th-wushan-huajing"]
        banks = client.get("/console/outlets", params={"kind": "bank_outlet"})
        assert banks.text.count("银行网点") >= len(CODE.findall(banks.text)) > 0
        outside = client.get("/console/outlets", params={"tenant": "cn/440000/440300"})
        assert outside.status_code == 403 and "不在您的管辖范围内" in outside.text
        assert CODE.findall(outside.text) == []
        empty = client.get("/console/outlets", params={"tenant": "cn/440000/440100/440199"})
        assert empty.status_code == 200 and CODE.findall(empty.text) == []
        bad = client.get("/console/outlets", params={"kind": "casino", "search": "x" * 65})
        assert bad.status_code == 400 and "筛选条件" in bad.text


def test_pages_of_fifty_follow_each_other(base):
    with httpx.Client(base_url=base, timeout=20) as client:
        log_in(client, "gd.web")
        seen, page = [], client.get("/console/outlets")
        total = int(re.search(r"(\d+)</p>", page.text.split('class="count"')[1]).group(1))
        while True:
            codes = CODE.findall(page.text)
            assert len(codes) <= 50 and codes == sorted(codes)
            seen += codes
            following = re.search(r'<a rel="next" href="([^"]+)"', page.text)
            if following is None:
                break
            page = client.get(following.group(1).replace("&amp;", "&"))
        assert total > 100 and len(seen) == len(set(seen)) == total
