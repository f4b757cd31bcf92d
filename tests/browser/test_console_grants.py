"""In Chromium at 1366×768: a city administrator registers a pharmacy and grants it password_change
(a proposal: Guangzhou grants by two people), a different approver approves it from their queue, and
the partner API then allows the pharmacy's call; the proposer's own queue never offers it. Each page
photographed in both languages."""

from __future__ import annotations

import pytest

from app.ops.principals.credentials import create_principal_with_token
from app.ops.principals.logins import set_password
from app.ops.tenants.apply import apply_tenant_files
from app.settings import Settings
from app.web import create_app
from tests.browser.steps import PASSWORD, VIEWPORT, both_languages, log_in
from tests.livesrv import serve

GZ = "cn/440000/440100"
DISTRICT = "cn/440000/440100/440106"


@pytest.fixture
async def console(db_url, sessions, tenants_dir, tmp_path):
    await apply_tenant_files(sessions, tenants_dir)
    for name, role in (("gz.web", "city_admin"), ("gz.approver", "approver")):
        await create_principal_with_token(sessions, tenant_path=GZ, role=role, name=name)
        await set_password(sessions, name, PASSWORD)
    settings = Settings(database_url=db_url, key_file=str(tmp_path / "keys.env"), audit_checkpoint_seconds=0)
    with serve(create_app(settings)) as url:
        yield url


async def permissions(page, base: str, key: str) -> set[str]:
    answer = await page.request.post(
        f"{base}/graphql", data={"query": "{ myPermissions { service } }"}, headers={"x-api-key": key}
    )
    return {row["service"] for row in (await answer.json())["data"]["myPermissions"]}


async def test_a_pharmacy_registered_granted_and_approved(browser, console, screenshots):
    admin = await (await browser.new_context(viewport=VIEWPORT, locale="zh-CN")).new_page()
    await log_in(admin, console, "gz.web")
    await admin.click("nav.pages >> text=网点")
    await admin.click("text=登记网点")
    await both_languages(admin, screenshots, "outlet-new")
    await admin.fill("#id", "gz-ph-tiyu")
    await admin.fill("#name", "天河体育西大药房")
    await admin.select_option("#kind", "designated_pharmacy")
    await admin.fill("#tenant", DISTRICT)
    await admin.fill("#address", "广州市天河区体育西路1号")
    await admin.click("button:has-text('登记')")
    assert admin.url.endswith("/console/outlets/gz-ph-tiyu")
    assert await admin.locator("h1").inner_text() == "天河体育西大药房 营业中"

    await admin.click("text=授权用卡服务")
    await admin.click("text=按授权上限检查")
    await both_languages(admin, screenshots, "grant-new")
    assert await admin.locator("#service option[value=financial_activation]").is_disabled()
    assert not await admin.locator("#service option[value=password_change]").is_disabled()
    await admin.select_option("#service", "password_change")
    await admin.fill("#valid_from", "2026-01-01")
    await admin.fill("#document_ref", "穗人社函〔2026〕7号")
    await admin.click("form.form button:text-is('授权')")
    assert "done=proposed" in admin.url
    assert await admin.locator(".notice").inner_text() == "已提交申请，须由另一人批准后生效。"
    await both_languages(admin, screenshots, "grant-proposed")
    grant_url = admin.url.split("?")[0]

    await admin.goto(f"{console}/console/outlets/gz-ph-tiyu")
    await admin.click("text=生成接入密钥")
    key = await admin.inner_text(".issued .secret code")
    await admin.screenshot(path=screenshots / "outlet-key-zh.png", full_page=True)
    assert "password_change" not in await permissions(admin, console, key)

    approver = await (await browser.new_context(viewport=VIEWPORT, locale="zh-CN")).new_page()
    await log_in(approver, console, "gz.approver")
    await approver.click("nav.pages >> text=审批")
    assert await approver.locator("section.proposal").count() == 1
    await both_languages(approver, screenshots, "approvals")
    await approver.fill("section.proposal input[name=note]", "材料齐全")
    await approver.click("section.proposal button:text-is('批准')")
    assert await approver.locator(".notice").inner_text() == "已批准，授权即时生效。"
    assert "password_change" in await permissions(admin, console, key)

    await admin.goto(grant_url)
    assert await admin.locator("h1 .tag").inner_text() == "生效中"
    await admin.goto(f"{console}/console/outlets/gz-ph-tiyu")
    assert await admin.locator("text=gz.approver").count() >= 1
    await both_languages(admin, screenshots, "outlet")
    await admin.click("nav.pages >> text=授权")
    assert await admin.locator("tbody tr").count() == 1
    await both_languages(admin, screenshots, "grants")
