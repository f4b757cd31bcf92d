"""The compliance plane over HTTP, as a city auditor uses it: who could, what could, why, what
changed and the trail; a revoked grant still answers for its time; nothing outside the auditor's
area, and a missing outlet answered like a hidden one."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.api.conftest import error_code
from tests.api.grant_helpers import GRANT_SERVICE, REVOKE, TH, grant_input

WHO_CAN = """query($t: String!, $s: String!, $at: DateTime, $first: Int, $after: String) {
  whoCan(tenant: $t, service: $s, at: $at, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { outlet { id name kind }
      via { grant { id state proposedBy documentRef } statutoryRule coversCardsOf
        putInForceBy inForceSince } } }
  }
}"""
WHAT_CAN = """query($o: String!, $at: DateTime) {
  whatCan(outlet: $o, at: $at) { open outlet { id } services { service via { grant { id } statutoryRule } } }
}"""
EXPLAIN = """query($o: String!, $c: String!, $s: String!, $at: DateTime) {
  explainDecision(outlet: $o, cardTenant: $c, service: $s, at: $at) {
    allowed reason explanation via { grant { id } }
  }
}"""
HISTORY = """query($t: String!, $from: DateTime, $to: DateTime) {
  grantHistory(tenant: $t, from: $from, to: $to) {
    totalCount edges { node {
      event { action actor credential tenant } grant { id documentRef proposedBy } before after
    } }
  }
}"""
EVENTS = """query($f: AuditEventFilter, $first: Int, $after: String) {
  auditEvents(filter: $f, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { id action actor decision reason detail } }
  }
}"""

ROLES = """query($t: String!, $at: DateTime, $r: String) {
  roleHolders(tenant: $t, at: $at, role: $r) {
    at holders { principal displayName role tenant since givenBy until takenBy }
  }
}"""
ROLE = "mutation($i: RoleInput!) { %s(input: $i) { principal { name } } }"


async def _granted_then_revoked(api) -> tuple[str, str]:
    """A password_reset grant to Wushan, in force for a moment, then revoked: (grant id, a time it held)."""
    made = await api.gql(GRANT_SERVICE, {"i": grant_input(service="password_reset")}, who="gz_admin")
    grant = made["data"]["grantService"]["grant"]
    held = datetime.now(UTC).isoformat()
    revoked = await api.gql(
        REVOKE,
        {"i": {"id": grant["id"], "reason": "审计抽查", "expectedVersion": grant["version"]}},
        who="gz_admin",
    )
    assert revoked["data"]["revokeGrant"]["grant"]["state"] == "revoked"
    return grant["id"], held


async def test_an_auditor_sees_who_could_then_and_who_can_now(no_approval):
    api = no_approval
    grant_id, held = await _granted_then_revoked(api)
    then = (await api.gql(WHO_CAN, {"t": TH, "s": "password_reset", "at": held}, who="gz_auditor"))["data"]
    assert then["whoCan"]["totalCount"] == 1
    (edge,) = then["whoCan"]["edges"]
    assert edge["node"]["outlet"]["id"] == "gz-th-wushan"
    (via,) = edge["node"]["via"]
    assert via.pop("inForceSince") < held
    assert via == {
        "grant": {
            "id": grant_id,
            "state": "revoked",
            "proposedBy": "gz.admin",
            "documentRef": "穗人社函〔2026〕7号",
        },
        "statutoryRule": None,
        "coversCardsOf": "cn/440000/440100",
        "putInForceBy": "principal:gz.admin",
    }
    now = (await api.gql(WHO_CAN, {"t": TH, "s": "password_reset"}, who="gz_auditor"))["data"]
    assert now["whoCan"] == {
        "totalCount": 0,
        "pageInfo": {"hasNextPage": False, "endCursor": None},
        "edges": [],
    }
    what = (await api.gql(WHAT_CAN, {"o": "gz-th-wushan", "at": held}, who="gz_auditor"))["data"]["whatCan"]
    assert what["open"] and "password_reset" in {s["service"] for s in what["services"]}
    why = await api.gql(EXPLAIN, {"o": "gz-th-wushan", "c": TH, "s": "password_reset"}, who="gz_auditor")
    assert why["data"]["explainDecision"]["allowed"] is False
    assert why["data"]["explainDecision"]["reason"] == "NO_GRANT"
    past = await api.gql(
        EXPLAIN, {"o": "gz-th-wushan", "c": TH, "s": "password_reset", "at": held}, who="gz_auditor"
    )
    assert past["data"]["explainDecision"]["allowed"] is True
    assert past["data"]["explainDecision"]["via"] == [{"grant": {"id": grant_id}}]


async def test_statutory_first_use_pages_through_every_hospital_and_pharmacy(no_approval):
    api = no_approval
    seen, after = [], None
    while True:
        page = await api.gql(
            WHO_CAN, {"t": TH, "s": "activation", "first": 1, "after": after}, who="gz_auditor"
        )
        found = page["data"]["whoCan"]
        seen += [e["node"]["outlet"]["id"] for e in found["edges"]]
        if not found["pageInfo"]["hasNextPage"]:
            break
        after = found["pageInfo"]["endCursor"]
    assert seen == sorted(seen) and len(seen) == found["totalCount"] >= 2
    assert {"gz-th-hosp-tianhe", "gz-th-pharm-dasenlin"} <= set(seen)


async def test_grant_history_and_the_trail_say_who_did_what(no_approval):
    api = no_approval
    grant_id, _ = await _granted_then_revoked(api)
    history = (await api.gql(HISTORY, {"t": "cn/440000/440100"}, who="gz_auditor"))["data"]["grantHistory"]
    actions = [(e["node"]["event"]["action"], e["node"]["event"]["actor"]) for e in history["edges"]]
    assert actions == [("grant.create", "principal:gz.admin"), ("grant.revoked", "principal:gz.admin")]
    create, revoke = (e["node"] for e in history["edges"])
    assert create["grant"] == {"id": grant_id, "documentRef": "穗人社函〔2026〕7号", "proposedBy": "gz.admin"}
    assert create["before"] is None and create["after"]["state"] == "active"
    assert (revoke["before"]["state"], revoke["after"]["state"]) == ("active", "revoked")
    assert revoke["event"]["credential"].startswith("token:")
    # The trail, filtered: the revocation only; paged one event at a time.
    only = await api.gql(EVENTS, {"f": {"action": "grant.revoked"}}, who="gz_auditor")
    assert [e["node"]["action"] for e in only["data"]["auditEvents"]["edges"]] == ["grant.revoked"]
    first = await api.gql(EVENTS, {"f": {"action": "grant."}, "first": 1}, who="gz_auditor")
    page = first["data"]["auditEvents"]
    assert page["totalCount"] == 2 and page["pageInfo"]["hasNextPage"]
    rest = await api.gql(
        EVENTS, {"f": {"action": "grant."}, "after": page["pageInfo"]["endCursor"]}, who="gz_auditor"
    )
    assert [e["node"]["action"] for e in rest["data"]["auditEvents"]["edges"]] == ["grant.revoked"]


async def test_outside_the_area_missing_and_malformed_are_refused_with_codes(no_approval):
    api = no_approval
    await _granted_then_revoked(api)
    refused = [
        (WHO_CAN, {"t": "cn/440000/440300", "s": "password_reset"}, "FORBIDDEN"),  # Shenzhen
        (WHO_CAN, {"t": TH, "s": "password_reset", "at": "2001-01-01T00:00:00+08:00"}, "BAD_INPUT"),
        (WHO_CAN, {"t": TH, "s": "password_reset", "at": "2199-01-01T00:00:00+08:00"}, "BAD_INPUT"),
        (WHAT_CAN, {"o": "gz-th-\u0012"}, "BAD_INPUT"),
        (
            HISTORY,
            {"t": TH, "from": "2026-03-03T00:00:00+08:00", "to": "2026-03-01T00:00:00+08:00"},
            "BAD_INPUT",
        ),
        (EVENTS, {"f": {"reason": "NOT_A_REASON"}}, "BAD_INPUT"),
        (EVENTS, {"f": {"tenant": "cn/440000"}}, "FORBIDDEN"),
        (EVENTS, {"after": "!!"}, "BAD_INPUT"),
    ]
    for query, variables, code in refused:
        body = await api.gql(query, variables, who="gz_auditor")
        assert error_code(body) == code, (variables, body)
        assert body["data"] is None
    # The fuzzer's finding: a NUL in an outlet code was INTERNAL on PostgreSQL. NUL is now refused at
    # the door for every field (tests/api/test_display_text.py).
    for query, variables in (
        (WHO_CAN, {"t": TH, "s": "pass\u0000word"}),
        (EXPLAIN, {"o": "gz\u0000th", "c": TH, "s": "password_reset"}),
    ):
        response = await api.post(query, variables, who="gz_auditor")
        assert response.status_code == 400 and error_code(response.json()) == "BAD_INPUT"
    # An outlet of Shenzhen and one that does not exist: the same answer.
    answers = []
    for outlet in ("sz-ft-huafu", "no-such-outlet"):
        body = await api.gql(WHAT_CAN, {"o": outlet}, who="gz_auditor")
        answers.append((error_code(body), body["errors"][0]["message"].replace(outlet, "X")))
    assert answers[0] == answers[1] and answers[0][0] == "FORBIDDEN"
    # The operator may not audit at all.
    body = await api.gql(WHO_CAN, {"t": TH, "s": "password_reset"}, who="gz_operator")
    assert error_code(body) == "FORBIDDEN"
    body = await api.gql(WHO_CAN, {"t": TH, "s": "password_reset"})
    assert error_code(body) == "UNAUTHENTICATED"


async def test_an_auditor_sees_who_held_a_role_after_it_was_taken(no_approval):
    api = no_approval
    role = {"i": {"name": "gz.operator", "tenant": TH, "role": "approver"}}
    assert "errors" not in await api.gql(ROLE % "assignRole", role, who="gz_admin")
    held = datetime.now(UTC).isoformat()
    assert "errors" not in await api.gql(ROLE % "removeRole", role, who="gz_admin")
    then = (await api.gql(ROLES, {"t": TH, "at": held, "r": "approver"}, who="gz_auditor"))["data"]
    (found,) = [h for h in then["roleHolders"]["holders"] if h["principal"] == "gz.operator"]
    admin = "principal:gz.admin"
    assert (found["tenant"], found["givenBy"], found["takenBy"]) == (TH, admin, admin)
    since, until = (datetime.fromisoformat(found[k]) for k in ("since", "until"))
    assert since <= datetime.fromisoformat(held) < until
    now = (await api.gql(ROLES, {"t": TH, "r": "approver"}, who="gz_auditor"))["data"]
    assert "gz.operator" not in {h["principal"] for h in now["roleHolders"]["holders"]}
    for variables, code in (
        ({"t": "cn/440000/440300"}, "FORBIDDEN"),
        ({"t": TH, "r": "no\u0007role"}, "BAD_INPUT"),
        ({"t": TH, "at": "2199-01-01T00:00:00+08:00"}, "BAD_INPUT"),
    ):
        body = await api.gql(ROLES, variables, who="gz_auditor")
        assert error_code(body) == code and body["data"] is None, (variables, body)
    assert error_code(await api.gql(ROLES, {"t": TH}, who="gz_operator")) == "FORBIDDEN"
