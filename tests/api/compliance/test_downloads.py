"""The report downloads as an auditor's browser or script gets them: CSV with a byte-order mark and
Chinese headers, XLSX a real workbook, times in Beijing time; refusals in the API's error shape."""

from __future__ import annotations

import csv
import io
import zipfile

import httpx

from tests.api.grant_helpers import GRANT_SERVICE, grant_input


async def download(api, path: str, who: str | None = "gz_auditor", **params) -> httpx.Response:
    headers = {"Authorization": f"Bearer {api.tokens[who]}"} if who else {}
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.get(f"{api.base}{path}", params=params, headers=headers)


def table(response: httpx.Response) -> list[list[str]]:
    assert response.content.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def sheet_text(response: httpx.Response) -> str:
    with zipfile.ZipFile(io.BytesIO(response.content)) as book:
        return "".join(
            book.read(n).decode() for n in book.namelist() if n.startswith("xl/") and n.endswith(".xml")
        )


async def test_the_permission_matrix_downloads_as_csv_and_xlsx(no_approval):
    api = no_approval
    made = await api.gql(GRANT_SERVICE, {"i": grant_input(service="password_reset")}, who="gz_admin")
    grant_id = made["data"]["grantService"]["grant"]["id"]
    response = await download(api, "/reports/permission-matrix", tenant="cn/440000/440100", format="csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = table(response)
    assert rows[0][:5] == ["网点编码", "网点名称", "网点类型", "所属部门", "启用（激活）"]
    wushan = next(r for r in rows if r[0] == "gz-th-wushan")
    assert wushan[2] == "基层服务平台"
    assert wushan[rows[0].index("密码重置")] == f"#{grant_id} 穗人社函〔2026〕7号"
    hospital = next(r for r in rows if r[0] == "gz-th-hosp-tianhe")
    assert hospital[rows[0].index("启用（激活）")] == "法定：定点医院首次就医启用"
    # Only Guangzhou's outlets, in code order.
    ids = [r[0] for r in rows[1:]]
    assert ids == sorted(ids) and all(i.startswith("gz-") for i in ids)
    book = await download(api, "/reports/permission-matrix", tenant="cn/440000/440100", format="xlsx")
    assert book.status_code == 200 and "spreadsheetml" in book.headers["content-type"]
    text = sheet_text(book)
    assert "网点编码" in text and "穗人社函〔2026〕7号" in text and "授权矩阵" in text


async def test_the_audit_trail_downloads_with_beijing_times(no_approval):
    api = no_approval
    await api.gql(GRANT_SERVICE, {"i": grant_input()}, who="gz_admin")
    response = await download(api, "/reports/audit-events", action="grant.create", format="csv")
    assert response.status_code == 200
    rows = table(response)
    assert rows[0][:4] == ["编号", "部门", "链内序号", "时间（北京时间）"]
    (event,) = rows[1:]
    assert event[6] == "grant.create" and event[4] == "principal:gz.admin"
    assert len(event[3]) == 19 and event[3][10] == " "  # 2026-12-03 18:00:00, no zone suffix
    book = await download(api, "/reports/audit-events", tenant="cn/440000/440100", format="xlsx")
    assert book.status_code == 200 and "grant.create" in sheet_text(book)


async def test_downloads_refuse_like_the_api(no_approval):
    api = no_approval
    cases = [
        ({"who": None, "tenant": "cn/440000/440100"}, 401, "UNAUTHENTICATED"),
        ({"tenant": "cn/440000/440300"}, 403, "FORBIDDEN"),
        ({"tenant": "cn/440000/440100", "format": "pdf"}, 400, "BAD_INPUT"),
        ({"tenant": "cn/440000/440100", "at": "2026-03-03"}, 400, "BAD_INPUT"),
        ({"tenant": "cn/440000/440100", "at": "2001-03-03T00:00:00+08:00"}, 400, "BAD_INPUT"),
        ({}, 400, "BAD_INPUT"),
    ]
    for params, status, code in cases:
        response = await download(api, "/reports/permission-matrix", **params)
        assert response.status_code == status, (params, response.text)
        assert response.json()["errors"][0]["extensions"]["code"] == code
    # An operator audits nothing: without a tenant, an empty table; with one, refused.
    response = await download(api, "/reports/audit-events", who="gz_operator")
    assert response.status_code == 200 and len(table(response)) == 1
    response = await download(api, "/reports/audit-events", who="gz_operator", tenant="cn/440000/440100")
    assert response.status_code == 403
    response = await download(api, "/reports/audit-events", tenant="cn/440000/440300")
    assert response.status_code == 403
