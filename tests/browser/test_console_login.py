"""The console in Chromium at 1366×768, as a city administrator uses it: first login with the second
factor enrolled from the page's QR code, the overview of their own area, their banks' outlets found
with the filters, the language switch, a form
posted without its token refused, logout; each page photographed in both languages."""

from __future__ import annotations

import asyncio
import time

import pyotp
import pytest

from app.ops.principals.credentials import create_principal_with_token
from app.ops.principals.logins import set_password
from app.ops.tenants.apply import apply_tenant_files
from app.settings import Settings
from app.web import create_app
from tests.browser.steps import PASSWORD, VIEWPORT, photograph
from tests.livesrv import serve

GZ = "cn/440000/440100"


@pytest.fixture
async def console(db_url, sessions, tenants_dir, tmp_path):
    await apply_tenant_files(sessions, tenants_dir)
    await create_principal_with_token(sessions, tenant_path=GZ, role="city_admin", name="gz.web")
    await set_password(sessions, "gz.web", PASSWORD)
    settings = Settings(database_url=db_url, key_file=str(tmp_path / "keys.env"), audit_checkpoint_seconds=0)
    with serve(create_app(settings)) as url:
        yield url


async def test_first_login_overview_language_and_logout(browser, console, screenshots):
    page = await browser.new_page(viewport=VIEWPORT, locale="zh-CN")
    await page.goto(f"{console}/console/")
    assert page.url.endswith("/console/login") and await page.locator("h1").inner_text() == "登录"
    await photograph(page, screenshots / "login-zh.png", full_page=False)
    await page.fill("#name", "gz.web")
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    assert page.url.endswith("/console/enrol")
    assert await page.locator(".qr svg").count() == 1
    await photograph(page, screenshots / "enrol-zh.png", full_page=False)
    secret = (await page.inner_text(".secret code")).replace(" ", "")
    if time.time() % 30 > 27:
        await asyncio.sleep(3)
    await page.fill("#code", pyotp.TOTP(secret).now())
    await page.click("button[type=submit]")
    assert page.url.endswith("/console/")
    assert await page.locator("h1").inner_text() == "概览"
    assert await page.locator("text=广州市天河区人力资源和社会保障局").count() == 1
    assert await page.locator("text=cn/440000/440300").count() == 0  # Shenzhen is not theirs
    await photograph(page, screenshots / "overview-zh.png")
    await page.click("nav.pages >> text=网点")
    await page.select_option("#kind", "bank_outlet")
    await page.click("form.filters button")
    assert "kind=bank_outlet" in page.url and await page.locator("tbody tr").count() > 0
    assert (
        await page.locator("tbody td:nth-child(3)").all_inner_texts()
        == ["银行网点"] * await page.locator("tbody tr").count()
    )
    await photograph(page, screenshots / "outlets-zh.png")
    await page.click("text=English")
    assert await page.locator("h1").inner_text() == "Outlets"
    await photograph(page, screenshots / "outlets-en.png")
    await page.click("nav.pages >> text=Overview")
    assert await page.locator("h1").inner_text() == "Overview"
    await photograph(page, screenshots / "overview-en.png")
    # Keyboard: the skip link comes first and leads to the content.
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.className") == "skip"
    # A form without its token (a page of another site posting here) is refused; the session stays.
    refused = await page.request.post(f"{console}/console/logout", form={"csrf": "not-the-token"})
    assert refused.status == 403
    await page.goto(f"{console}/console/")
    assert await page.locator("h1").inner_text() == "Overview"
    await page.click("button:has-text('Log out')")
    assert page.url.endswith("/console/login")
    await photograph(page, screenshots / "login-en.png", full_page=False)
    await page.goto(f"{console}/console/")
    assert page.url.endswith("/console/login")  # the session ended
    await page.close()
