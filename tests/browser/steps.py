"""Steps the browser tests share: logging in with the second factor enrolled from the page."""

from __future__ import annotations

import asyncio
import time

import pyotp

PASSWORD = "Guangzhou-2026-ok"
VIEWPORT = {"width": 1366, "height": 768}


async def log_in(page, base: str, name: str) -> None:
    """A first login: name and password, the key read from the enrolment page, a code from it."""
    await page.goto(f"{base}/console/login")
    await page.fill("#name", name)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    secret = (await page.inner_text(".secret code")).replace(" ", "")
    if time.time() % 30 > 27:
        await asyncio.sleep(3)
    await page.fill("#code", pyotp.TOTP(secret).now())
    await page.click("button[type=submit]")
    assert page.url.endswith("/console/"), page.url


async def both_languages(page, folder, name: str) -> None:
    """The page as it is, in Chinese and in English (back to Chinese after)."""
    await page.screenshot(path=folder / f"{name}-zh.png", full_page=True)
    await page.click("nav.languages >> text=English")
    await page.screenshot(path=folder / f"{name}-en.png", full_page=True)
    await page.click("nav.languages >> text=中文")
