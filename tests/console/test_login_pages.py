"""The console's login over real HTTP, as a browser without JavaScript does it: the password, the
second factor enrolled from the page, the session cookie, the overview of one's own area only, forms
refused without their token, logout, both languages, and the headers that keep the pages to
themselves."""

from __future__ import annotations

import httpx
import pytest

from app.ops.principals.credentials import create_principal_with_token
from app.ops.principals.logins import set_password
from app.ops.tenants.apply import apply_tenant_files
from app.settings import Settings
from app.web import create_app
from tests.api.outlet_helpers import recorded_statements
from tests.console.console_helpers import PASSWORD, hidden, log_in
from tests.livesrv import serve

TH = "cn/440000/440100/440106"


@pytest.fixture
async def base(db_url, sessions, tenants_dir, tmp_path):
    await apply_tenant_files(sessions, tenants_dir)
    await create_principal_with_token(
        sessions, tenant_path="cn/440000/440100", role="city_admin", name="gz.web"
    )
    await set_password(sessions, "gz.web", PASSWORD)
    settings = Settings(database_url=db_url, key_file=str(tmp_path / "keys.env"), audit_checkpoint_seconds=0)
    with serve(create_app(settings)) as url:
        yield url


def test_a_city_administrator_logs_in_sees_their_area_and_logs_out(base):
    with httpx.Client(base_url=base, headers={"accept-language": "zh-CN"}, timeout=20) as client:
        assert client.get("/console/").headers["location"] == "/console/login"
        log_in(client)
        page = client.get("/console/")
        assert page.status_code == 200 and "概览" in page.text and "广州市天河区" in page.text
        assert "cn/440000/440300" not in page.text  # Shenzhen: a sibling city
        cookie = next(c for c in client.cookies.jar if c.name == "ssc_session")
        assert cookie.path == "/console" and cookie.has_nonstandard_attr("HttpOnly")
        login_cookie = httpx.get(f"{base}/console/login").headers["set-cookie"]
        assert "SameSite=strict" in login_cookie and "HttpOnly" in login_cookie
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"
        # Logging out needs the form's token; without it nothing happens.
        refused = client.post("/console/logout", data={})
        assert refused.status_code == 403 and client.get("/console/").status_code == 200
        out = client.post("/console/logout", data={"csrf": hidden(page.text, "csrf")})
        assert out.status_code == 303
        assert client.get("/console/").headers["location"] == "/console/login"


def test_a_login_form_from_elsewhere_or_a_wrong_password_gets_nowhere(base):
    with httpx.Client(base_url=base, timeout=20) as client:
        # A form posted from another site carries no login cookie of ours.
        forged = httpx.post(
            f"{base}/console/login", data={"csrf": "x", "name": "gz.web", "password": PASSWORD}
        )
        assert forged.status_code == 403 and "ssc_session" not in forged.headers.get("set-cookie", "")
        form = client.get("/console/login")
        wrong = client.post(
            "/console/login",
            data={"csrf": hidden(form.text, "csrf"), "name": "gz.web", "password": "Wrong-pass-2026"},
        )
        assert wrong.status_code == 401 and ("登录名或密码错误" in wrong.text or "Wrong name" in wrong.text)


def test_the_language_follows_the_browser_then_the_switch(base):
    with httpx.Client(base_url=base, timeout=20) as client:
        english = client.get("/console/login", headers={"accept-language": "en-GB,en;q=0.9"})
        assert "Log in" in english.text and 'lang="en"' in english.text
        chinese = client.get("/console/login", headers={"accept-language": "zh-CN,zh;q=0.9"})
        assert "登录" in chinese.text and 'lang="zh-CN"' in chinese.text
        switched = client.get(
            "/console/language/en?next=/console/login", headers={"accept-language": "zh-CN"}
        )
        assert switched.status_code == 303 and switched.headers["location"] == "/console/login"
        assert "Log in" in client.get("/console/login", headers={"accept-language": "zh-CN"}).text
        away = client.get("/console/language/en?next=https://elsewhere.example/")
        assert away.headers["location"] == "/console/"  # the switch sends nobody off the console


async def test_the_overview_costs_the_same_statements_whatever_the_area(
    db_url, sessions, tenants_dir, tmp_path
):
    """A province's tree or a county's: a fixed number of SQL statements, not one per department."""
    await apply_tenant_files(sessions, tenants_dir)
    for name, tenant, role in (("gd.web", "cn/440000", "province_admin"), ("th.web", TH, "county_admin")):
        await create_principal_with_token(sessions, tenant_path=tenant, role=role, name=name)
        await set_password(sessions, name, PASSWORD)
    app = create_app(
        Settings(database_url=db_url, key_file=str(tmp_path / "keys.env"), audit_checkpoint_seconds=0)
    )
    counts, sizes = {}, {}
    with serve(app) as url:
        for name in ("gd.web", "th.web"):
            with httpx.Client(base_url=url, timeout=20) as client:
                log_in(client, name)
                with recorded_statements(app.state.engine.sync_engine) as statements:
                    page = client.get("/console/")
                counts[name], sizes[name] = len(statements), page.text.count("<tr>")
    assert sizes["gd.web"] > sizes["th.web"]  # the province's tree is larger...
    # ...and costs no more statements: the session and its person (3), the tree (2), the figures (5).
    assert counts["gd.web"] == counts["th.web"] <= 11, counts
