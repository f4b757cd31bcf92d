"""The overview's charts over HTTP: a grant made in Nanshan counts under Shenzhen for the province;
someone who may not read the audit trail gets no figures from it (the figures themselves:
tests/ops/compliance/test_dashboard.py)."""

from __future__ import annotations

import re

import pytest

from app.ops.principals.credentials import create_principal_with_token
from app.ops.principals.logins import set_password
from app.ops.tenants.apply import apply_tenant_files
from app.settings import Settings
from app.web import create_app
from tests.console.console_helpers import PASSWORD, client, pharmacy_with_grant
from tests.livesrv import serve


@pytest.fixture
async def base(db_url, sessions, tenants_dir, tmp_path):
    await apply_tenant_files(sessions, tenants_dir)
    for name, tenant, role in (
        ("gd.web", "cn/440000", "province_admin"),
        ("sz.web", "cn/440000/440300", "city_admin"),
        ("sz.operator", "cn/440000/440300", "operator"),
    ):
        await create_principal_with_token(sessions, tenant_path=tenant, role=role, name=name)
        await set_password(sessions, name, PASSWORD)
    settings = Settings(database_url=db_url, key_file=str(tmp_path / "keys.env"), audit_checkpoint_seconds=0)
    with serve(create_app(settings)) as url:
        yield url


def figures(page: str, chart: str) -> dict[str, list[str]]:
    """A chart's table: row label -> its cells."""
    section = re.search(rf'id="{chart}-title".*?</details>', page, re.S).group(0)
    return {
        label: re.findall(r"<td>(\d+)</td>", cells)
        for label, cells in re.findall(r'<th scope="row">([^<]+)</th>(.*?)</tr>', section, re.S)
    }


def test_grants_and_decisions_in_the_charts(base):
    with client(base, "sz.web") as city:
        pharmacy_with_grant(city)
    with client(base, "gd.web") as province:
        page = province.get("/console/").text
        by_service = figures(page, "by-service")
        assert by_service["深圳市人力资源和社会保障局"][-1] == "1"  # its Nanshan grant, under Shenzhen
        assert by_service["广州市人力资源和社会保障局"][-1] == "0"
        by_kind = figures(page, "by-kind")
        assert by_kind["深圳市人力资源和社会保障局"][-1] == "1"
        assert "近30天接入调用" in page  # figures from the audit trail, which a province admin reads
    with client(base, "sz.operator") as operator:
        page = operator.get("/console/").text
        assert 'id="by-service-title"' in page and 'id="decisions-title"' not in page
        assert "近30天接入调用" not in page  # operators do not read the audit trail
