"""Logging in to the console over HTTP as a browser without JavaScript does, for the page tests."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pyotp

PASSWORD = "Guangzhou-2026-ok"


def hidden(page: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]+)"', page).group(1)


def log_in(client: httpx.Client, name: str = "gz.web") -> None:
    form = client.get("/console/login")
    entered = client.post(
        "/console/login", data={"csrf": hidden(form.text, "csrf"), "name": name, "password": PASSWORD}
    )
    assert entered.status_code == 303 and entered.headers["location"] == "/console/enrol"
    enrol = client.get("/console/enrol")
    assert enrol.status_code == 200 and "<svg" in enrol.text
    secret = re.search(r"<code>([A-Z2-7 ]+)</code>", enrol.text).group(1).replace(" ", "")
    if time.time() % 30 > 27:
        time.sleep(3)
    done = client.post(
        "/console/code", data={"csrf": hidden(enrol.text, "csrf"), "code": pyotp.TOTP(secret).now()}
    )
    assert done.status_code == 303 and done.headers["location"] == "/console/"


@contextmanager
def client(base: str, name: str) -> Iterator[httpx.Client]:
    """A browser without JavaScript, logged in as `name` (a first login: the second factor enrolled)."""
    with httpx.Client(base_url=base, headers={"accept-language": "zh-CN"}, timeout=20) as browser:
        log_in(browser, name)
        yield browser


def post_form(browser: httpx.Client, page_url: str, action: str, **fields: str) -> httpx.Response:
    """Post a form the way the page `page_url` does, with that page's token."""
    page = browser.get(page_url)
    return browser.post(action, data={"csrf": hidden(page.text, "csrf"), **fields})


def main(page: str) -> str:
    """The page's own content (the top bar links back to the page's address)."""
    return page[page.index("<main") :]


def partner_services(base: str, key: str) -> set[str]:
    """The card services the partner API says the key's outlet may perform now."""
    answer = httpx.post(
        f"{base}/graphql",
        json={"query": "{ myPermissions { service } }"},
        headers={"x-api-key": key},
        timeout=20,
    ).json()
    return {row["service"] for row in answer["data"]["myPermissions"]}


def grant_state(browser: httpx.Client, grant_id: str) -> str:
    page = browser.get(f"/console/grants/{grant_id}")
    return re.search(r'<h1>.*?class="tag state-([a-z]+)"', page.text, re.S).group(1)


NANSHAN = "cn/440000/440300/440305"


def pharmacy_with_grant(admin: httpx.Client) -> tuple[str, str]:
    """Shenzhen grants by one person: a pharmacy in Nanshan with password_change, in force; its key."""
    post_form(
        admin,
        "/console/outlets/new",
        "/console/outlets/new",
        id="sz-ph-nanshan",
        name="南山健康大药房",
        kind="designated_pharmacy",
        tenant=NANSHAN,
    )
    granted = post_form(
        admin,
        "/console/grants/new",
        "/console/grants/new",
        outlet="sz-ph-nanshan",
        tenant=NANSHAN,
        service="password_change",
        valid_from="2026-01-01",
        document_ref="深人社函〔2026〕3号",
    )
    assert granted.headers["location"].endswith("?done=active")
    issued = post_form(
        admin, "/console/outlets/sz-ph-nanshan", "/console/outlets/sz-ph-nanshan/keys", days="30"
    )
    key = re.search(r'<p class="secret"><code>([^<]+)</code>', issued.text).group(1)
    return re.search(r"/console/grants/(\d+)", granted.headers["location"]).group(1), key
