"""A real browser for the console's tests: Debian's Chromium driven by Playwright (which cannot
download a browser of its own here). With SSC_REQUIRE_BROWSER=1 (as `.ci/run` sets) a browser that
cannot start fails the tests; without it, on a machine with no Chromium, they skip and say why."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("SSC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
async def browser() -> AsyncIterator:
    """Playwright's async API: the tests share pytest-asyncio's event loop with the database fixtures
    (its sync API would run a loop of its own in the same thread)."""
    required = os.environ.get("SSC_REQUIRE_BROWSER") == "1"
    if not Path(CHROMIUM).exists():
        if required:
            pytest.fail(f"SSC_REQUIRE_BROWSER=1 but there is no Chromium at {CHROMIUM}")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium fonts-noto-cjk)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        try:
            launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        except Exception as err:  # the browser's own failure to start, whatever it is
            if required:
                pytest.fail(f"Chromium did not start: {err}")
            pytest.skip(f"Chromium did not start: {err}")
        yield launched
        await launched.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory, request) -> Path:
    """Where the pages are photographed, said on the terminal so that someone looks at them."""
    folder = Path(os.environ.get("SSC_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"console screenshots: {folder}")
    return folder
