"""Importing outlets from a CSV file (Excel's GB 18030 as well as UTF-8; a refused file lists its
problems by row and imports nothing), moving an outlet, and a bulk grant previewed, proposed and
approved as one batch; over HTTP as a browser without JavaScript does, with the abuse cases."""

from __future__ import annotations

import re

import pytest

from app.ops.principals.credentials import create_principal_with_token
from app.ops.principals.logins import set_password
from app.ops.tenants.apply import apply_tenant_files
from app.settings import Settings
from app.web import create_app
from tests.console.console_helpers import NANSHAN, PASSWORD, client, hidden
from tests.livesrv import serve

TIANHE = "cn/440000/440100/440106"
CSV = (
    "id,tenant,kind,name,address\n"
    f"sz-ns-imp-1,{NANSHAN},designated_pharmacy,南山导入药房一,深圳市南山区科技园\n"
    f"sz-ns-imp-2,{NANSHAN},designated_hospital,南山导入医院二,深圳市南山区后海\n"
)


@pytest.fixture
async def base(db_url, sessions, tenants_dir, tmp_path):
    await apply_tenant_files(sessions, tenants_dir)
    for name, tenant, role in (
        ("sz.web", "cn/440000/440300", "city_admin"),
        ("gz.web", "cn/440000/440100", "city_admin"),
        ("gz.approver", "cn/440000/440100", "approver"),
    ):
        await create_principal_with_token(sessions, tenant_path=tenant, role=role, name=name)
        await set_password(sessions, name, PASSWORD)
    settings = Settings(database_url=db_url, key_file=str(tmp_path / "keys.env"), audit_checkpoint_seconds=0)
    with serve(create_app(settings)) as url:
        yield url


def upload(browser, tenant: str, content: bytes):
    page = browser.get("/console/outlets/import")
    return browser.post(
        "/console/outlets/import",
        data={"csrf": hidden(page.text, "csrf"), "tenant": tenant},
        files={"file": ("outlets.csv", content, "text/csv")},
    )


def test_import_refused_whole_then_made_and_an_outlet_moved(base):
    with client(base, "sz.web") as city:
        broken = CSV + f"sz-ns-imp-1,{NANSHAN},casino,重复的编码,地址\n"
        refused = upload(city, NANSHAN, broken.encode("gb18030"))
        assert refused.status_code == 400 and "未导入任何网点" in refused.text
        rows = re.findall(r"<tr><td>(\d+)</td>", refused.text)
        assert "4" in rows  # the header is row 1: the third outlet is row 4
        assert city.get("/console/outlets/sz-ns-imp-1").status_code == 403  # nothing was imported
        outside = upload(city, TIANHE, CSV.replace(NANSHAN, TIANHE).encode())
        assert outside.status_code == 403
        made = upload(city, NANSHAN, CSV.encode("gb18030"))  # as Excel saves it on a Chinese Windows
        assert made.status_code == 200 and "已导入: 2" in made.text
        outlet = city.get("/console/outlets/sz-ns-imp-1")
        assert "南山导入药房一" in outlet.text
        page = city.get("/console/outlets/sz-ns-imp-1")
        version = re.search(r'name="version" value="(\d+)"', page.text).group(1)
        away = city.post(
            "/console/outlets/sz-ns-imp-1/move",
            data={"csrf": hidden(page.text, "csrf"), "version": version, "tenant": TIANHE},
        )
        assert away.status_code == 403 and NANSHAN in city.get("/console/outlets/sz-ns-imp-1").text
        moved = city.post(
            "/console/outlets/sz-ns-imp-1/move",
            data={"csrf": hidden(page.text, "csrf"), "version": version, "tenant": "cn/440000/440300/440304"},
        )
        assert moved.status_code == 303
        assert (
            "<dd><code>cn/440000/440300/440304</code></dd>" in city.get("/console/outlets/sz-ns-imp-1").text
        )
        huge = city.post(
            "/console/outlets/import",
            content=b"x" * (3 * 1024 * 1024 + 1),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert huge.status_code == 413


def test_a_bulk_grant_previewed_proposed_and_approved_as_one_batch(base):
    with client(base, "gz.web") as admin, client(base, "gz.approver") as approver:
        page = admin.get("/console/grants/bulk")
        form = {
            "csrf": hidden(page.text, "csrf"),
            "tenant": "cn/440000/440100",
            "service": "info_inquiry",
            "kind": "designated_pharmacy",
            "valid_from": "2026-01-01",
            "document_ref": "穗人社函〔2026〕20号",
        }
        above = admin.post("/console/grants/bulk/preview", data=form)
        assert (
            above.status_code == 200 and "按当前选择无法授权" in above.text and "超出授权上限" in above.text
        )
        refused = admin.post("/console/grants/bulk", data=form)
        assert refused.status_code == 409 and "已提交申请" not in refused.text
        assert "找到授权: 0" in admin.get("/console/grants").text  # all or nothing
        form["service"] = "activation"
        preview = admin.post("/console/grants/bulk/preview", data=form)
        count = int(re.search(r"选择结果包含 (\d+) 个网点", preview.text).group(1))
        assert count >= 2 and "所选网点均可获得该用卡服务授权" in preview.text
        made = admin.post("/console/grants/bulk", data=form)
        assert made.status_code == 200 and f"已提交申请，涉及 {count} 个网点" in made.text
        queue = approver.get("/console/approvals")
        assert queue.text.count('class="card proposal batch"') == 1 and f"全部批准 ({count})" in queue.text
        batch = {
            name: re.search(rf'name="{name}" value="([^"]+)"', queue.text.split("proposal batch")[1]).group(1)
            for name in ("tenant", "first", "last", "count")
        }
        no_note = approver.post(
            "/console/approvals/batch",
            data={"csrf": hidden(queue.text, "csrf"), "decision": "reject", **batch},
        )
        assert no_note.status_code == 400
        stale = approver.post(
            "/console/approvals/batch",
            data={
                "csrf": hidden(queue.text, "csrf"),
                "decision": "approve",
                **batch,
                "count": str(count + 1),
            },
        )
        assert stale.status_code == 409
        approved = approver.post(
            "/console/approvals/batch",
            data={"csrf": hidden(queue.text, "csrf"), "decision": "approve", **batch},
        )
        assert approved.status_code == 303
        active = admin.get("/console/grants", params={"state": "active", "service": "activation"})
        assert f"找到授权: {count}" in active.text
