"""Steps the browser tests share: logging in with the second factor enrolled from the page."""

from __future__ import annotations

import asyncio
import time

import pyotp
from playwright.async_api import Error as PlaywrightError

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


async def photograph(page, path, full_page: bool = True) -> None:
    """The page once it has loaded. Chromium sometimes refuses a capture taken while a frame is being
    swapped in ("Unable to capture screenshot", seen right after a redirect in a CI run): that is the
    browser's, not the page's, so the capture is tried again a few times before it fails the test."""
    await page.wait_for_load_state("load")
    for attempt in range(3):
        try:
            await page.screenshot(path=path, full_page=full_page)
            return
        except PlaywrightError as err:
            if "Unable to capture screenshot" not in str(err) or attempt == 2:
                raise
            await asyncio.sleep(0.5)


async def both_languages(page, folder, name: str) -> None:
    """The page as it is, in Chinese and in English (back to Chinese after)."""
    await photograph(page, folder / f"{name}-zh.png")
    await page.click("nav.languages >> text=English")
    await photograph(page, folder / f"{name}-en.png")
    await page.click("nav.languages >> text=中文")
