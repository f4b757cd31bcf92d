"""GraphQL fuzzing (schemathesis) against the running app, over HTTP: queries and mutations generated
from schema.graphql, valid and hostile arguments alike, sent once with a national administrator's
token and once with a partner key. No answer may be a 5xx, an error without a code or a masked
INTERNAL one (a bug the server hid), or data whose shape breaks the schema (tests/fuzz/response_shape).

At least SSC_FUZZ_CASES cases per credential (2,000 in `make test`, more in `make soak`), spread over
every query and mutation; the run stops short and fails if it cannot reach them within its time."""

from __future__ import annotations

import math
import os
import time
from datetime import UTC
from pathlib import Path

import httpx
import pytest
import schemathesis
from graphql import StringValueNode, Visitor, build_schema, parse, print_ast, visit
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.graphql import nodes
from sqlmodel import select

from app.domain.catalogue import CardService, OutletKind
from app.domain.roles import AdminRole
from app.ops.demo.partner import partner_quick_start
from app.ops.principals.credentials import create_principal_with_token
from app.ops.tenants.apply import apply_tenant_files
from app.settings import Settings, resolve_keys
from app.store.crypto import FieldCipher
from app.store.tables import Grant, Outlet, Principal, Tenant
from app.web import create_app
from tests.fuzz.response_shape import shape_problems
from tests.livesrv import serve

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"
CASES = int(os.environ.get("SSC_FUZZ_CASES", "2000"))
DEADLINE_S = float(os.environ.get("SSC_FUZZ_SECONDS", "300"))

# DateTime: well-formed instants (ancient, current, far-future) and strings that only look like one.
schemathesis.graphql.scalar(
    "DateTime",
    st.one_of(
        st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
        st.sampled_from(["2026-02-30T00:00:00Z", "9999-12-31T23:59:59+14:00", "now", "", "2026-01-01"]),
        st.text(max_size=40),
    ).map(nodes.String),
)
schemathesis.graphql.scalar(
    "JSON",
    st.one_of(st.text(max_size=30).map(nodes.String), st.integers().map(nodes.Int), st.just(nodes.Null)),
)


@pytest.fixture
async def served(db_url, sessions, tenants_dir, tmp_path):
    settings = Settings(
        database_url=db_url,
        key_file=str(tmp_path / "keys.env"),
        audit_checkpoint_seconds=0,
        # The fuzzer is one caller sending thousands of calls: a rate limit would answer most of them.
        partner_rate_limit="100000/second",
        partner_rate_limit_max="100000/second",
    )
    await apply_tenant_files(sessions, tenants_dir)
    admin = await create_principal_with_token(sessions, tenant_path="cn", role="province_admin", name="fuzz")
    started = await partner_quick_start(sessions, FieldCipher(*resolve_keys(settings)), "gz-hall-city")
    known = await _known_values(sessions, started.card)
    with serve(create_app(settings)) as url:
        yield url, {"authorization": f"Bearer {admin.token}"}, {"x-api-key": started.key.key}, known


async def _known_values(sessions, card) -> dict[str, list[str]]:
    """Values the database holds, by argument name: a fuzzer left to random strings is refused at
    the first argument it sends, and never reaches the rules behind it."""
    async with sessions() as session:
        paths = list((await session.exec(select(Tenant.path))).all())
        outlets = list((await session.exec(select(Outlet.id))).all())
        grants = [str(i) for i in (await session.exec(select(Grant.id))).all()]
        names = list((await session.exec(select(Principal.name))).all())
    tenants = [*paths, "cn/440000/440100/449999"]
    return {
        **dict.fromkeys(("tenant", "tenantPath", "path", "under", "issuingTenant"), tenants),
        **dict.fromkeys(("outlet", "outletId", "targetId"), outlets),
        **{name: [*grants, "0", "999999"] for name in ("id", "grantId", "firstGrantId", "lastGrantId")},
        "name": names,
        "service": [s.value for s in CardService],
        **{name: [k.value for k in OutletKind] for name in ("kind", "outletKind")},
        "role": [r.value for r in AdminRole],
        "cardNumber": [card.card_number],
        "cardSerial": [card.card_serial],
        "idNumber": [card.id_number],
        "documentRef": ["粤人社函〔2026〕1号"],
        "reason": ["核查后调整", ""],
    }


class _Known(Visitor):
    """Replaces string arguments named in `known` by a value the database holds, half of the time."""

    def __init__(self, known: dict[str, list[str]], draw) -> None:
        super().__init__()
        self.known, self.draw = known, draw

    def _replace(self, node, *_):
        values = self.known.get(node.name.value)
        if values and isinstance(node.value, StringValueNode) and self.draw(st.booleans()):
            chosen = StringValueNode(value=self.draw(st.sampled_from(values)))
            return node.__class__(name=node.name, value=chosen)
        return None

    enter_argument = enter_object_field = _replace


def _operations():
    schema = schemathesis.graphql.from_path(str(SCHEMA_FILE))
    found = [result.ok() for result in schema.get_all_operations()]
    # Subscriptions speak graphql-transport-ws, not POST: the WebSocket tests cover them.
    return [op for op in found if not op.label.startswith("Subscription.")]


def _judge(schema, query: str, response: httpx.Response) -> list[str]:
    if response.status_code >= 500:
        return [f"HTTP {response.status_code}"]
    body = response.json()
    if not isinstance(body, dict) or not ({"data", "errors"} & set(body)):
        return [f"not a GraphQL answer: {str(body)[:200]}"]
    problems = []
    for error in body.get("errors") or ():
        code = (error.get("extensions") or {}).get("code")
        if code in (None, "INTERNAL"):
            problems.append(f"error {code}: {error.get('message')}")
    return problems + shape_problems(schema, parse(query), body.get("data"))


def _fuzz(url: str, headers: dict[str, str], known: dict[str, list[str]]) -> tuple[int, dict[str, list[str]]]:
    graphql_schema = build_schema(SCHEMA_FILE.read_text(encoding="utf-8"))
    operations = _operations()
    per_operation = math.ceil(CASES / len(operations))
    sent, findings = 0, {}
    deadline = time.monotonic() + DEADLINE_S
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for round_ in range(5):  # an operation with few distinct cases is exhausted early: go round again
            for operation in operations:

                @given(case=operation.as_strategy(), data=st.data())
                @settings(
                    max_examples=per_operation,
                    database=None,
                    deadline=None,
                    phases=[Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
                def run(case, data) -> None:
                    nonlocal sent
                    if time.monotonic() > deadline:
                        return
                    query = print_ast(visit(parse(case.body), _Known(known, data.draw)))
                    response = client.post("/graphql", json={"query": query})
                    sent += 1
                    for problem in _judge(graphql_schema, query, response):
                        findings.setdefault(problem, []).append(query)

                run()
            if sent >= CASES or time.monotonic() > deadline:
                break
            per_operation = math.ceil((CASES - sent) / len(operations)) + round_
    return sent, findings


@pytest.mark.slow
@pytest.mark.parametrize("credential", ["administrator", "partner key"])
def test_generated_queries_and_mutations_find_no_server_error(served, credential):
    url, admin, partner, known = served
    sent, findings = _fuzz(url, admin if credential == "administrator" else partner, known)
    report = "\n\n".join(f"{problem}\n  e.g. {cases[0]}" for problem, cases in list(findings.items())[:10])
    assert not findings, f"{len(findings)} kinds of finding in {sent} cases:\n{report}"
    assert sent >= CASES, f"only {sent} of {CASES} cases within {DEADLINE_S:.0f} s"
