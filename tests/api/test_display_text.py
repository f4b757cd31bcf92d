"""Display text (names, addresses, document references, reasons) is visible text, stored as NFC.

The security review (issue 11, item 12) got INTERNAL from a lone UTF-16 surrogate in a name, and
had zero-width-only names, right-to-left overrides, NUL, newlines and ANSI escapes accepted in
outlet names, display names and document references. NUL is refused at the door for every field.
"""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import select

from app.store.tables import Grant, Outlet, Principal
from tests.api.conftest import error_code
from tests.api.grant_helpers import GRANT_SERVICE, grant_input
from tests.api.outlet_helpers import TH, db_state
from tests.audit_helpers import assert_nothing_written, assert_only_denial

CREATE_OUTLET = "mutation($i: CreateOutletInput!) { createOutlet(input: $i) { outlet { id name } } }"
CREATE_PRINCIPAL = (
    "mutation($i: CreatePrincipalInput!) { createPrincipal(input: $i) { principal { displayName } } }"
)
CLOSE_OUTLET = "mutation($i: CloseOutletInput!) { closeOutlet(input: $i) { outlet { status } } }"
OUTLET = {"id": "th-text", "tenant": TH, "kind": "hrss_hall"}

HOSTILE = [
    "\u200b\u200b",  # zero-width spaces only
    "\u200d",  # a zero-width joiner alone
    "天河\u202e厅务服",  # a right-to-left override
    "天河\n厅",  # a newline (log and CSV injection)
    "\x1b[31m天河厅\x1b[0m",  # ANSI colour escapes
    "\ufeff天河厅",  # a byte order mark
    "天河\u2028厅",  # a line separator
]


@pytest.mark.parametrize("text", HOSTILE)
async def test_outlet_names_refuse_invisible_and_control_characters(api, sessions, text):
    before = await db_state(sessions)
    body = await api.gql(CREATE_OUTLET, {"i": {**OUTLET, "name": text}}, who="gz_admin")
    assert error_code(body) == "BAD_INPUT" and body["errors"][0]["extensions"]["field"] == "name", body
    assert_only_denial(before, await db_state(sessions), "gz_admin")


@pytest.mark.parametrize("text", HOSTILE)
async def test_display_names_document_references_and_reasons_refuse_them_too(api, sessions, text):
    person = {"name": "li.na", "tenant": TH, "role": "operator", "displayName": text}
    body = await api.gql(CREATE_PRINCIPAL, {"i": person}, who="gz_admin")
    assert error_code(body) == "BAD_INPUT" and body["errors"][0]["extensions"]["field"] == "displayName"
    body = await api.gql(GRANT_SERVICE, {"i": grant_input(documentRef=text)}, who="gz_admin")
    assert error_code(body) == "BAD_INPUT" and body["errors"][0]["extensions"]["field"] == "documentRef"
    closing = {"id": "gz-th-shipai", "expectedVersion": 1, "reason": f"合并{text}"}
    body = await api.gql(CLOSE_OUTLET, {"i": closing}, who="gz_admin")
    assert error_code(body) in ("BAD_INPUT", "CONFLICT")  # file-managed outlets are CONFLICT first
    async with sessions() as session:
        assert (await session.exec(select(Principal).where(Principal.name == "li.na"))).first() is None
        assert (await session.exec(select(Grant))).all() == []


CREATE_KEY = "mutation($i: CreatePartnerKeyInput!) { createPartnerKey(input: $i) { prefix } }"


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (CREATE_OUTLET, {"i": {**OUTLET, "name": "天河\x00厅"}}),
        (
            CREATE_PRINCIPAL,
            {"i": {"name": "li.na", "tenant": TH, "role": "operator", "displayName": "李\x00娜"}},
        ),
        # The fuzzer's finding: PostgreSQL could not even look the outlet up (INTERNAL).
        (CREATE_KEY, {"i": {"outletId": "gz\x00th", "days": 30}}),
        ('mutation { createPartnerKey(input: {outletId: "gz\\u0000th", days: 30}) { prefix } }', None),
        ('mutation { createPartnerKey(input: {outletId: "gz\\u{0}th", days: 30}) { prefix } }', None),
    ],
)
async def test_nul_anywhere_is_refused_at_the_door_and_nothing_is_written(api, sessions, query, variables):
    """U+0000 is no part of any text the platform takes, and PostgreSQL refuses it even in a
    comparison: refused before anything runs, for every field, in a variable or a literal."""
    before = await db_state(sessions)
    response = await api.post(query, variables, who="gz_admin")
    body = response.json()
    assert response.status_code == 400 and error_code(body) == "BAD_INPUT", body
    assert "NUL" in body["errors"][0]["message"]
    assert_nothing_written(before, await db_state(sessions))


async def test_chinese_text_and_punctuation_pass_and_are_stored_as_nfc(api, sessions):
    body = await api.gql(
        CREATE_OUTLET, {"i": {**OUTLET, "name": "天河区\u3000石牌街（东）服务点、e\u0301"}}, who="gz_admin"
    )
    assert body["data"]["createOutlet"]["outlet"]["name"] == "天河区\u3000石牌街（东）服务点、\u00e9", body
    body = await api.gql(
        GRANT_SERVICE, {"i": grant_input(documentRef="穗人社函〔2026〕7号《通知》")}, who="gz_admin"
    )
    assert "errors" not in body, body
    async with sessions() as session:
        outlet = await session.get(Outlet, "th-text")
    assert outlet.name.endswith("\u00e9")


async def test_a_lone_surrogate_is_refused_before_anything_runs(api, sessions):
    """JSON may spell a lone surrogate ("\\ud800"); no database can store it. Refused while the body is
    parsed (no caller is established yet, so not even a denial event), never INTERNAL."""
    before = await db_state(sessions)
    raw = (
        b'{"query": "mutation($i: CreateOutletInput!) { createOutlet(input: $i) { outlet { id } } }",'
        b' "variables": {"i": {"id": "th-text", "tenant": "' + TH.encode() + b'", "kind": "hrss_hall",'
        b' "name": "\\ud800\\u5929"}}}'
    )
    async with httpx.AsyncClient(timeout=20) as client:
        response = await client.post(
            f"{api.base}/graphql",
            content=raw,
            headers={"content-type": "application/json", "Authorization": f"Bearer {api.tokens['gz_admin']}"},
        )
    assert response.status_code == 400, response.text
    assert "Internal" not in response.text
    # In the query text itself the GraphQL lexer refuses it.
    literal = (
        'mutation { createOutlet(input: {id: "th-text", tenant: "'
        + TH
        + '", kind: "hrss_hall", name: "\\uD800"}) { outlet { id } } }'
    )
    body = await api.gql(literal, who="gz_admin")
    assert error_code(body) == "BAD_INPUT"
    assert_nothing_written(before, await db_state(sessions))


async def test_answers_carry_chinese_as_utf8(api):
    response = await api.post("{ tenants { edges { node { name } } } }", who="gd_admin")
    assert "广东省".encode() in response.content and b"\\u" not in response.content
