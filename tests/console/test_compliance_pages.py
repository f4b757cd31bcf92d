"""Ceilings, compliance and people pages over HTTP: a province previews then sets a narrower ceiling
that suspends a city's grant; an auditor finds the pharmacy in who-can at the earlier time (not now)
and downloads the matrix of that moment with Chinese headers; the trail's verification status; a
county administrator refused a sibling county like something that does not exist; people within
reach only, roles offered no higher than one's own, a deactivation ending the person's session."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
import zipfile
from datetime import datetime

import httpx
import pytest

from app.ops.compliance.labels import CST
from app.ops.compliance.verifications import record_verification
from app.ops.compliance.verify import verify_database
from app.ops.principals.credentials import create_principal_with_token
from app.ops.principals.logins import set_password
from app.ops.tenants.apply import apply_tenant_files
from app.settings import Settings
from app.store.db import make_async_engine, make_session_factory
from app.web import create_app
from tests.console.console_helpers import (
    PASSWORD,
    client,
    grant_state,
    hidden,
    main,
    partner_services,
    pharmacy_with_grant,
    post_form,
)
from tests.livesrv import serve

SZ = "cn/440000/440300"
NANSHAN = "cn/440000/440300/440305"
PEOPLE = (
    ("gd.web", "cn/440000", "province_admin"),
    ("gd.auditor", "cn/440000", "auditor"),
    ("sz.web", SZ, "city_admin"),
    ("sz.approver", SZ, "approver"),
    ("th.web", "cn/440000/440100/440106", "county_admin"),
)


@pytest.fixture
async def base(db_url, sessions, tenants_dir, tmp_path):
    await apply_tenant_files(sessions, tenants_dir)
    for name, tenant, role in PEOPLE:
        await create_principal_with_token(sessions, tenant_path=tenant, role=role, name=name)
        await set_password(sessions, name, PASSWORD)
    settings = Settings(database_url=db_url, key_file=str(tmp_path / "keys.env"), audit_checkpoint_seconds=0)
    with serve(create_app(settings)) as url:
        yield url


def test_a_province_ceiling_and_the_auditor_who_finds_the_earlier_grant(base, db_url):
    with (
        client(base, "sz.web") as city,
        client(base, "gd.web") as province,
        client(base, "gd.auditor") as auditor,
    ):
        grant_id, key = pharmacy_with_grant(city)
        assert "password_change" in partner_services(base, key)
        time.sleep(1.1)
        before = datetime.now(CST)
        time.sleep(1.1)

        # The preview names what a narrower ceiling would suspend, and changes nothing.
        page = province.get("/console/ceilings", params={"tenant": "cn/440000"})
        assert page.status_code == 200 and "授权上限" in page.text
        ceiling = {
            "tenant": "cn/440000",
            "kind": "designated_pharmacy",
            "services": "activation",
            "version": "0",
        }
        preview = province.post(
            "/console/ceilings/preview", data={"csrf": hidden(page.text, "csrf"), **ceiling}
        )
        assert preview.status_code == 200
        assert re.search(r"将被暂停的授权（待审批的将被驳回）: 1", preview.text)
        assert f'href="/console/grants/{grant_id}"' in preview.text
        assert grant_state(city, grant_id) == "active" and "password_change" in partner_services(base, key)
        tokenless = province.post("/console/ceilings", data=ceiling)
        assert tokenless.status_code == 403 and grant_state(city, grant_id) == "active"
        saved = province.post("/console/ceilings", data={"csrf": hidden(page.text, "csrf"), **ceiling})
        assert saved.status_code == 303 and "ended=1" in saved.headers["location"]
        assert grant_state(city, grant_id) == "suspended"
        assert "password_change" not in partner_services(base, key)  # the very next request
        stale = province.post("/console/ceilings", data={"csrf": hidden(page.text, "csrf"), **ceiling})
        assert stale.status_code == 409  # version 0 is no longer the ceiling's

        asked = {"tenant": NANSHAN, "service": "password_change"}  # the grant covers Nanshan's cards
        earlier = {"date": before.date().isoformat(), "time": before.strftime("%H:%M:%S")}
        then = auditor.get("/console/who-can", params=asked | earlier)
        assert then.status_code == 200 and "sz-ph-nanshan" in then.text and "深人社函〔2026〕3号" in then.text
        now = auditor.get("/console/who-can", params=asked)
        assert now.status_code == 200 and "sz-ph-nanshan" not in now.text
        link = re.search(r'href="(/console/reports/permission-matrix\?[^"]+format=csv)"', then.text).group(1)
        matrix = auditor.get(link.replace("&amp;", "&"))
        assert matrix.status_code == 200 and matrix.headers["content-type"].startswith("text/csv")
        table = list(csv.reader(io.StringIO(matrix.content.decode("utf-8-sig"))))
        assert table[0][:4] == ["网点编码", "网点名称", "网点类型", "所属部门"]
        row = next(r for r in table if r[0] == "sz-ph-nanshan")
        assert any(f"grant:{grant_id}" in cell or grant_id in cell for cell in row[4:])
        xlsx = auditor.get(link.replace("&amp;", "&").replace("format=csv", "format=xlsx"))
        assert zipfile.ZipFile(io.BytesIO(xlsx.content)).testzip() is None

        what = auditor.get("/console/what-can", params={"outlet": "sz-ph-nanshan"} | earlier)
        assert "密码修改" in what.text
        future = auditor.get("/console/who-can", params=asked | {"date": "2199-01-01"})
        assert future.status_code == 400

        trail = auditor.get("/console/audit", params={"tenant": SZ, "action": "ceiling."})
        assert "从未校验" in trail.text
        asyncio.run(verified(db_url))
        trail = auditor.get("/console/audit", params={"tenant": "cn/440000", "action": "ceiling."})
        assert "✓ 完整" in trail.text and "ceiling.set" in trail.text
        events = auditor.get(
            re.search(r'href="(/console/reports/audit-events\?[^"]+format=csv)"', trail.text)
            .group(1)
            .replace("&amp;", "&")
        )
        assert events.status_code == 200 and "ceiling.set" in events.content.decode("utf-8-sig")
        history = auditor.get("/console/grant-history", params={"tenant": SZ})
        assert f"/console/grants/{grant_id}" in history.text


def refusal(page: str) -> str:
    """What a page says of a refusal (the form around it echoes what was asked)."""
    return re.search(r'<div class="problem".*?</div>', page, re.S).group(0)


async def verified(db_url: str) -> None:
    """What `ssc audit verify` does: walk the chains, keep what it found."""
    engine = make_async_engine(db_url)
    try:
        await record_verification(make_session_factory(engine), verify_database(db_url, jobs=1), None)
    finally:
        await engine.dispose()


def test_a_county_sees_neither_a_sibling_county_nor_what_is_above(base):
    with client(base, "th.web") as county:
        sibling = county.get(
            "/console/who-can", params={"tenant": "cn/440000/440100/440104", "service": "activation"}
        )
        missing = county.get(
            "/console/who-can", params={"tenant": "cn/440000/440100/440199", "service": "activation"}
        )
        assert sibling.status_code == missing.status_code == 403
        # The same words, each naming what was asked.
        assert refusal(sibling.text).replace("440104", "?") == refusal(missing.text).replace("440199", "?")
        assert county.get("/console/outlets", params={"tenant": "cn/440000/440100/440104"}).status_code == 403
        assert county.get("/console/ceilings", params={"tenant": "cn/440000/440300"}).status_code == 403
        assert county.get("/console/anomalies", params={"tenant": "cn/440000"}).status_code == 403
        above = county.get("/console/people/gd.web")
        nobody = county.get("/console/people/no.such.person")
        assert above.status_code == nobody.status_code == 403 and main(above.text) == main(nobody.text)
        matrix = county.get(
            "/console/reports/permission-matrix", params={"tenant": "cn/440000", "format": "csv"}
        )
        assert matrix.status_code == 403 and "网点编码" not in matrix.text
    with httpx.Client(base_url=base, timeout=20) as stranger:
        assert stranger.get("/console/reports/audit-events").headers["location"] == "/console/login"


def test_people_within_reach_and_a_deactivation_that_ends_the_session(base):
    with client(base, "sz.web") as city, client(base, "sz.approver") as approver:
        people = city.get("/console/people")
        assert "sz.approver" in people.text and "gd.web" not in people.text and "th.web" not in people.text
        new = city.get("/console/people/new")
        offered = set(re.findall(r'<option value="([a-z_]+)"', new.text))
        assert "city_admin" in offered and "province_admin" not in offered
        above = post_form(
            city,
            "/console/people/new",
            "/console/people/new",
            name="sz.boss",
            tenant="cn/440000",
            role="province_admin",
        )
        assert above.status_code == 403 and city.get("/console/people/sz.boss").status_code == 403
        made = post_form(
            city,
            "/console/people/new",
            "/console/people/new",
            name="sz.operator",
            tenant=NANSHAN,
            role="operator",
        )
        assert made.status_code == 200 and re.search(r'<p class="secret"><code>[^<]{20,}</code>', made.text)
        assert approver.get("/console/approvals").status_code == 200
        page = city.get("/console/people/sz.approver")
        version = re.search(r'name="version" value="(\d+)"', page.text).group(1)
        gone = city.post(
            "/console/people/sz.approver/deactivate",
            data={"csrf": hidden(page.text, "csrf"), "version": version, "reason": "调离岗位"},
        )
        assert gone.status_code == 303
        after = approver.get("/console/approvals")
        assert after.status_code == 303 and after.headers["location"] == "/console/login"
        assert "已停用" in city.get("/console/people/sz.approver").text
