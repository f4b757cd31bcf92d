"""People, roles and tokens through the API: who may see and change whom, and what a refusal leaves."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from app.store.crypto import secret_hash
from app.store.tables import AuditEvent, PersonalToken, Principal, RoleAssignment, Tenant
from tests.api.conftest import error_code
from tests.api.grant_helpers import add_person
from tests.audit_helpers import assert_only_denial

GZ = "cn/440000/440100"
SZ = "cn/440000/440300"
TH = "cn/440000/440100/440106"

PERSON = (
    "{ name displayName active version createdBy roles { role tenantPath } tokens { id prefix revokedAt } }"
)
PRINCIPALS = (
    "query($t: String!, $first: Int, $after: String) { principals(tenant: $t, first: $first, after: $after)"
    " { totalCount edges { node { name roles { role tenantPath } } } pageInfo { hasNextPage endCursor } } }"
)
PRINCIPAL = "query($n: String!) { principal(name: $n) " + PERSON + " }"
CREATE = (
    "mutation($i: CreatePrincipalInput!) { createPrincipal(input: $i) { principal "
    + PERSON
    + " enrolmentToken { token prefix expiresAt oneTime } } }"
)
ASSIGN = "mutation($i: RoleInput!) { assignRole(input: $i) { principal " + PERSON + " } }"
REMOVE = "mutation($i: RoleInput!) { removeRole(input: $i) { principal " + PERSON + " } }"
DEACTIVATE = (
    "mutation($i: DeactivatePrincipalInput!) { deactivatePrincipal(input: $i) { principal " + PERSON + " } }"
)
ISSUE = (
    "mutation($i: IssueTokenInput!) { issueToken(input: $i) { principal "
    + PERSON
    + " token { token prefix expiresAt oneTime } } }"
)
REVOKE = "mutation($i: RevokeTokenInput!) { revokeToken(input: $i) { principal " + PERSON + " } }"
ME = "{ me { name } }"


async def db_state(sessions) -> dict:
    """Everything a principal mutation could touch, plus the audit trail."""
    async with sessions() as session:
        return {
            "principals": sorted(
                (p.name, p.display_name, p.active, p.version, p.created_by)
                for p in (await session.exec(select(Principal))).all()
            ),
            "roles": sorted(
                (r.principal_id, r.tenant_id, r.role)
                for r in (await session.exec(select(RoleAssignment))).all()
            ),
            "tokens": sorted(
                (t.id, t.principal_id, t.token_hash, t.revoked_at)
                for t in (await session.exec(select(PersonalToken))).all()
            ),
            "tenants": sorted(
                (t.path, t.two_person_approval, t.pin_lock_threshold, t.version)
                for t in (await session.exec(select(Tenant))).all()
            ),
            "events": [
                (e.id, e.actor, e.action, e.decision, e.detail)
                for e in (await session.exec(select(AuditEvent).order_by(AuditEvent.id))).all()
            ],
        }


async def principal_id(sessions, name: str) -> int:
    async with sessions() as session:
        return (await session.exec(select(Principal.id).where(Principal.name == name))).one()


async def token_rows(sessions, name: str) -> list[PersonalToken]:
    pid = await principal_id(sessions, name)
    async with sessions() as session:
        return list(
            (
                await session.exec(
                    select(PersonalToken).where(PersonalToken.principal_id == pid).order_by(PersonalToken.id)
                )
            ).all()
        )


async def ok(api, query: str, variables: dict, who: str) -> dict:
    body = await api.gql(query, variables, who=who)
    assert "errors" not in body, body
    return body["data"]


def refusal(body: dict) -> tuple[str | None, str | None]:
    ext = body["errors"][0]["extensions"] if body.get("errors") else {}
    return ext.get("code"), ext.get("field")


# --- isolation: every mutation, refused to a sibling, a child acting upward, an auditor, anonymous ----

REFUSED_CALLERS = [
    ("sz_admin", "FORBIDDEN"),
    ("th_admin", "FORBIDDEN"),
    ("gz_auditor", "FORBIDDEN"),
    (None, "UNAUTHENTICATED"),
]


async def _mutation_on_gz_operator(api, sessions, kind: str) -> tuple[str, dict]:
    """A call that gz.admin would be allowed to make, aimed at Guangzhou or its operator."""
    if kind == "create":
        return CREATE, {"i": {"name": "li.na", "tenant": GZ, "role": "operator"}}
    if kind == "assign":
        return ASSIGN, {"i": {"name": "gz.operator", "tenant": GZ, "role": "approver"}}
    if kind == "remove":
        await ok(api, ASSIGN, {"i": {"name": "gz.operator", "tenant": GZ, "role": "approver"}}, "gz_admin")
        return REMOVE, {"i": {"name": "gz.operator", "tenant": GZ, "role": "approver"}}
    if kind == "deactivate":
        return DEACTIVATE, {"i": {"name": "gz.operator", "reason": "left the bureau"}}
    prefix = (await token_rows(sessions, "gz.operator"))[0].prefix
    return REVOKE, {"i": {"prefix": prefix}}


@pytest.mark.parametrize("kind", ["create", "assign", "remove", "deactivate", "revoke"])
async def test_every_mutation_is_refused_outside_reach(api, sessions, kind):
    query, variables = await _mutation_on_gz_operator(api, sessions, kind)
    for who, code in REFUSED_CALLERS:
        before = await db_state(sessions)
        body = await (api.gql(query, variables, who=who) if who else api.gql(query, variables))
        assert error_code(body) == code, (who, body)
        assert body["data"] is None
        assert_only_denial(before, await db_state(sessions), who)
    # The same call by Guangzhou's administrator goes through: the refusals were about reach.
    assert "errors" not in await api.gql(query, variables, who="gz_admin")


# --- createPrincipal ----------------------------------------------------------------------------


async def test_a_created_person_gets_a_one_time_enrolment_token_for_their_own(api, sessions):
    data = await ok(
        api,
        CREATE,
        {"i": {"name": "li.na", "displayName": "李娜", "tenant": TH, "role": "operator"}},
        "gz_admin",
    )
    created, enrolment = data["createPrincipal"]["principal"], data["createPrincipal"]["enrolmentToken"]
    assert created["roles"] == [{"role": "operator", "tenantPath": TH}]
    assert created["createdBy"] == "gz.admin" and created["displayName"] == "李娜"
    assert enrolment["oneTime"] is True and enrolment["token"].startswith(enrolment["prefix"])
    assert [t["prefix"] for t in created["tokens"]] == [enrolment["prefix"]]
    # It expires within the enrolment time (24 hours by default), not in days.
    expires = datetime.fromisoformat(enrolment["expiresAt"])
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(hours=24)
    # It acts as nobody: it reads who it belongs to, and nothing else.
    assert (await api.gql(ME, token=enrolment["token"]))["data"]["me"] == {"name": "li.na"}
    listed = await api.gql(PRINCIPALS, {"t": TH}, token=enrolment["token"])
    assert error_code(listed) == "FORBIDDEN"
    grant = await api.gql(
        CREATE, {"i": {"name": "li.si", "tenant": TH, "role": "operator"}}, token=enrolment["token"]
    )
    assert error_code(grant) == "FORBIDDEN"
    # Its one use: the person's own token, which replaces it.
    data = await ok_as(api, ISSUE, {"i": {"days": 30}}, enrolment["token"])
    own = data["issueToken"]["token"]
    assert own["oneTime"] is False and own["token"] != enrolment["token"]
    assert (await api.gql(ME, token=own["token"]))["data"]["me"]["name"] == "li.na"
    assert error_code(await api.gql(ME, token=enrolment["token"])) == "UNAUTHENTICATED"
    assert error_code(await api.gql(ISSUE, {"i": {}}, token=enrolment["token"])) == "UNAUTHENTICATED"
    # Nothing ever shows or stores either token again.
    again = await api.post(PRINCIPAL, {"n": "li.na"}, who="gz_admin")
    assert enrolment["token"] not in again.text and own["token"] not in again.text
    stored = await token_rows(sessions, "li.na")
    assert [t.token_hash for t in stored] == [secret_hash(enrolment["token"]), secret_hash(own["token"])]
    assert [t.one_time for t in stored] == [True, False] and stored[0].revoked_at is not None
    async with sessions() as session:
        person = (await session.exec(select(Principal).where(Principal.name == "li.na"))).one()
        events = (
            await session.exec(
                select(AuditEvent)
                .where(AuditEvent.target_id == "li.na", AuditEvent.decision.is_(None))
                .order_by(AuditEvent.id)
            )
        ).all()
    # created_by is what the two-person rule checks: gz.admin may not approve for li.na.
    assert person.created_by == await principal_id(sessions, "gz.admin")
    assert [(e.action, e.actor) for e in events] == [
        ("principal.create", "principal:gz.admin"),
        ("principal.issue_token", "principal:li.na"),
    ]
    # Each event names the credential that acted: gz.admin's token, then the enrolment token.
    gz_admin_token = (await token_rows(sessions, "gz.admin"))[0]
    assert [e.credential for e in events] == [f"token:{gz_admin_token.id}", f"token:{stored[0].id}"]
    assert json.loads(events[0].detail)["token_prefix"] == enrolment["prefix"]
    assert json.loads(events[1].detail)["replaces_enrolment_token"] == stored[0].id
    assert all(enrolment["token"] not in e.detail and own["token"] not in e.detail for e in events)


async def test_nobody_obtains_a_token_of_another_person(api, sessions):
    """The attack of the security review (issue 11, item 2): an administrator minting a working token
    for an approver in their subtree, to approve their own proposal with it."""
    for who, name in [("gz_admin", "gz.approver"), ("gd_admin", "gz.approver"), ("gz_admin", "th.admin")]:
        before = await db_state(sessions)
        body = await api.gql(ISSUE, {"i": {"name": name}}, who=who)
        assert error_code(body) == "FORBIDDEN" and "only to its owner" in body["errors"][0]["message"]
        assert_only_denial(before, await db_state(sessions), who)


async def test_a_token_never_outlives_the_token_that_issued_it(api, sessions):
    short = await add_person(sessions, "gz.clerk", GZ, "operator", days=2)
    # Asked for more than the caller's own token has left: refused, naming the field.
    before = await db_state(sessions)
    body = await api.gql(ISSUE, {"i": {"days": 366}}, token=short)
    assert refusal(body) == ("BAD_INPUT", "days")
    assert_only_denial(before, await db_state(sessions), "gz_clerk")
    # Left to the default (90 days), it is cut to the caller's own expiry.
    data = await ok_as(api, ISSUE, {"i": {}}, short)
    rows = await token_rows(sessions, "gz.clerk")
    assert datetime.fromisoformat(data["issueToken"]["token"]["expiresAt"]) == rows[0].expires_at
    # And a token issued by that one can outlive neither.
    third = await ok_as(api, ISSUE, {"i": {"days": 1}}, data["issueToken"]["token"]["token"])
    assert datetime.fromisoformat(third["issueToken"]["token"]["expiresAt"]) <= rows[0].expires_at


async def ok_as(api, query: str, variables: dict, token: str) -> dict:
    body = await api.gql(query, variables, token=token)
    assert "errors" not in body, body
    return body["data"]


@pytest.mark.parametrize(
    ("variables", "field", "reason"),
    [
        ({"name": "Li.Na"}, "name", "BAD_NAME"),
        ({"name": "x"}, "name", "BAD_NAME"),
        ({"name": "li na"}, "name", "BAD_NAME"),
        ({"name": "l" * 65}, "name", "BAD_NAME"),
        ({"role": "superuser"}, "role", "UNKNOWN_ROLE"),
        ({"role": "r" * 10_000}, "role", None),
        ({"role": "county_admin"}, "role", "ROLE_LEVEL"),  # a county role at a prefecture
        ({"role": "province_admin"}, "role", "ROLE_LEVEL"),
        ({"tenant": "cn/440000/450100"}, "tenant", "BAD_TENANT_PATH"),
        ({"tenant": "cn/" + "4" * 500}, "tenant", "BAD_TENANT_PATH"),
        ({"displayName": "名" * 129}, "displayName", None),
        ({"displayName": "   "}, "displayName", None),
    ],
)
async def test_bad_input_names_the_field_and_writes_nothing(api, sessions, variables, field, reason):
    before = await db_state(sessions)
    body = await api.gql(
        CREATE, {"i": {"name": "li.na", "tenant": GZ, "role": "operator"} | variables}, who="gz_admin"
    )
    assert refusal(body) == ("BAD_INPUT", field)
    if reason:
        assert body["errors"][0]["extensions"]["reason"] == reason
    assert_only_denial(before, await db_state(sessions), "gz_admin")


async def test_role_above_own_or_outside_subtree_is_forbidden(api, sessions):
    for who, tenant, role in [
        ("th_admin", GZ, "city_admin"),  # above a county administrator, and above Tianhe
        ("gz_admin", "cn/440000", "province_admin"),
        ("gz_admin", SZ, "operator"),
    ]:
        before = await db_state(sessions)
        body = await api.gql(CREATE, {"i": {"name": "li.na", "tenant": tenant, "role": role}}, who=who)
        assert error_code(body) == "FORBIDDEN", (who, tenant)
        assert_only_denial(before, await db_state(sessions), who)


async def test_duplicate_name_is_a_conflict_and_missing_tenant_not_found(api, sessions):
    # A taken login name is answered alike whether its holder is in reach (gz.operator) or not
    # (sz.admin): login names are one namespace, and the answer says nothing of where the holder works.
    answers = []
    for name in ("sz.admin", "gz.operator"):
        before = await db_state(sessions)
        body = await api.gql(CREATE, {"i": {"name": name, "tenant": GZ, "role": "operator"}}, who="gz_admin")
        assert refusal(body) == ("CONFLICT", "name")
        answers.append(body["errors"][0]["message"].replace(name, "NAME"))
        assert_only_denial(before, await db_state(sessions), "gz_admin")
    assert answers[0] == answers[1]
    before = await db_state(sessions)
    body = await api.gql(
        CREATE,
        {"i": {"name": "li.na", "tenant": "cn/440000/440100/440113", "role": "operator"}},
        who="gz_admin",
    )
    assert error_code(body) == "NOT_FOUND"
    assert_only_denial(before, await db_state(sessions), "gz_admin")


# --- assignRole / removeRole --------------------------------------------------------------------


async def test_assign_and_remove_a_role(api, sessions):
    data = await ok(api, ASSIGN, {"i": {"name": "gz.operator", "tenant": TH, "role": "approver"}}, "gz_admin")
    person = data["assignRole"]["principal"]
    assert (
        person["roles"]
        == [
            {"role": "operator", "tenantPath": GZ},
            {"role": "approver", "tenantPath": TH},
        ]
        and person["version"] == 2
    )
    again = await api.gql(
        ASSIGN, {"i": {"name": "gz.operator", "tenant": TH, "role": "approver"}}, who="gz_admin"
    )
    assert refusal(again) == ("CONFLICT", "role")
    # Tianhe's administrator may take back a Tianhe role from someone not above them.
    data = await ok(api, REMOVE, {"i": {"name": "gz.operator", "tenant": TH, "role": "approver"}}, "th_admin")
    # What is left (operator in Guangzhou) lies outside Tianhe, so its administrator no longer sees it.
    assert data["removeRole"]["principal"]["roles"] == []
    async with sessions() as session:
        actions = [
            (e.actor, e.action, e.tenant)
            for e in (
                await session.exec(
                    select(AuditEvent).where(
                        AuditEvent.target_id == "gz.operator", AuditEvent.actor != "cli:tokens-create"
                    )
                )
            ).all()
        ]
    assert actions == [
        ("principal:gz.admin", "principal.assign_role", TH),
        ("principal:th.admin", "principal.remove_role", TH),
    ]


async def test_assign_role_refusals(api, sessions):
    before = await db_state(sessions)
    # Someone gz.admin cannot see, and someone who does not exist: the same answer.
    hidden = await api.gql(
        ASSIGN, {"i": {"name": "sz.admin", "tenant": GZ, "role": "operator"}}, who="gz_admin"
    )
    missing = await api.gql(
        ASSIGN, {"i": {"name": "nobody", "tenant": GZ, "role": "operator"}}, who="gz_admin"
    )
    assert error_code(hidden) == error_code(missing) == "FORBIDDEN"
    assert hidden["errors"][0]["message"].replace("sz.admin", "X") == missing["errors"][0]["message"].replace(
        "nobody", "X"
    )
    # Level mismatch, a role above the assigner's, an unknown role.
    level = await api.gql(
        ASSIGN, {"i": {"name": "gz.operator", "tenant": GZ, "role": "county_admin"}}, who="gz_admin"
    )
    assert refusal(level) == ("BAD_INPUT", "role")
    above = await api.gql(
        ASSIGN, {"i": {"name": "gz.operator", "tenant": GZ, "role": "city_admin"}}, who="th_admin"
    )
    assert error_code(above) == "FORBIDDEN"
    unknown = await api.gql(
        ASSIGN, {"i": {"name": "gz.operator", "tenant": GZ, "role": "root"}}, who="gz_admin"
    )
    assert refusal(unknown) == ("BAD_INPUT", "role")
    after = await db_state(sessions)
    assert {k: v for k, v in after.items() if k != "events"} == {
        k: v for k, v in before.items() if k != "events"
    }
    assert all(d == "deny" for _, _, _, d, _ in after["events"][len(before["events"]) :])


async def test_remove_role_guard_rails(api, sessions):
    # A person above the remover keeps their role, even one the remover could hand out.
    await ok(api, ASSIGN, {"i": {"name": "gz.admin", "tenant": TH, "role": "operator"}}, "gd_admin")
    before = await db_state(sessions)
    body = await api.gql(
        REMOVE, {"i": {"name": "gz.admin", "tenant": TH, "role": "operator"}}, who="th_admin"
    )
    assert error_code(body) == "FORBIDDEN"
    assert_only_denial(before, await db_state(sessions), "th_admin")
    # Nobody loses their last role (deactivate instead), nor removes their own last administrator role.
    last = await api.gql(
        REMOVE, {"i": {"name": "gz.approver", "tenant": GZ, "role": "approver"}}, who="gz_admin"
    )
    assert refusal(last) == ("CONFLICT", "role")
    own = await api.gql(
        REMOVE, {"i": {"name": "gz.admin", "tenant": GZ, "role": "city_admin"}}, who="gz_admin"
    )
    assert refusal(own) == ("CONFLICT", "role")
    assert (await db_state(sessions))["roles"] == before["roles"]
    # Their own lesser role they may drop.
    data = await ok(api, REMOVE, {"i": {"name": "gz.admin", "tenant": TH, "role": "operator"}}, "gz_admin")
    assert data["removeRole"]["principal"]["roles"] == [{"role": "city_admin", "tenantPath": GZ}]
    missing = await api.gql(
        REMOVE, {"i": {"name": "gz.admin", "tenant": TH, "role": "operator"}}, who="gz_admin"
    )
    assert error_code(missing) == "NOT_FOUND"


# --- deactivatePrincipal ------------------------------------------------------------------------


async def test_deactivated_persons_tokens_are_refused(api, sessions):
    assert (await api.gql(ME, who="gz_operator"))["data"]["me"]["name"] == "gz.operator"
    data = await ok(
        api, DEACTIVATE, {"i": {"name": "gz.operator", "reason": "left", "expectedVersion": 1}}, "gz_admin"
    )
    person = data["deactivatePrincipal"]["principal"]
    assert person["active"] is False and person["version"] == 2
    assert all(t["revokedAt"] for t in person["tokens"])
    assert error_code(await api.gql(ME, who="gz_operator")) == "UNAUTHENTICATED"
    again = await api.gql(DEACTIVATE, {"i": {"name": "gz.operator", "reason": "left"}}, who="gz_admin")
    assert error_code(again) == "CONFLICT"
    # No new role for a deactivated person.
    assign = await api.gql(
        ASSIGN, {"i": {"name": "gz.operator", "tenant": GZ, "role": "approver"}}, who="gz_admin"
    )
    assert error_code(assign) == "CONFLICT"
    async with sessions() as session:
        event = (
            await session.exec(
                select(AuditEvent).where(
                    AuditEvent.action == "principal.deactivate", AuditEvent.decision.is_(None)
                )
            )
        ).one()
    assert event.tenant == GZ and json.loads(event.detail)["reason"] == "left"


async def test_deactivation_refusals(api, sessions):
    for variables, expected in [
        ({"name": "gz.admin", "reason": "bye"}, ("BAD_INPUT", "name")),
        ({"name": "th.admin", "reason": "x", "expectedVersion": 7}, ("CONFLICT", "expectedVersion")),
        ({"name": "th.admin", "reason": ""}, ("BAD_INPUT", "reason")),
        ({"name": "th.admin", "reason": "r" * 513}, ("BAD_INPUT", "reason")),
    ]:
        before = await db_state(sessions)
        assert refusal(await api.gql(DEACTIVATE, {"i": variables}, who="gz_admin")) == expected
        assert_only_denial(before, await db_state(sessions), "gz_admin")
    # Above the caller: Tianhe's administrator cannot switch off Guangzhou's, even once they share Tianhe.
    await ok(api, ASSIGN, {"i": {"name": "gz.admin", "tenant": TH, "role": "auditor"}}, "gd_admin")
    before = await db_state(sessions)
    body = await api.gql(DEACTIVATE, {"i": {"name": "gz.admin", "reason": "coup"}}, who="th_admin")
    assert error_code(body) == "FORBIDDEN"
    assert_only_denial(before, await db_state(sessions), "th_admin")


# --- issueToken / revokeToken -------------------------------------------------------------------


async def test_issued_and_revoked_tokens(api, sessions):
    data = await ok(api, ISSUE, {"i": {"name": "gz.operator", "days": 3}}, "gz_operator")
    second = data["issueToken"]["token"]["token"]
    assert (await api.gql(ME, token=second))["data"]["me"]["name"] == "gz.operator"
    # A person revokes their own token by prefix; the other one keeps working.
    first_prefix = (await token_rows(sessions, "gz.operator"))[0].prefix
    data = await ok(api, REVOKE, {"i": {"prefix": first_prefix}}, "gz_operator")
    assert [bool(t["revokedAt"]) for t in data["revokeToken"]["principal"]["tokens"]] == [True, False]
    assert error_code(await api.gql(ME, who="gz_operator")) == "UNAUTHENTICATED"
    assert (await api.gql(ME, token=second))["data"]["me"]["name"] == "gz.operator"
    # The administrator revokes the other by id; twice is a conflict.
    second_id = (await token_rows(sessions, "gz.operator"))[1].id
    await ok(api, REVOKE, {"i": {"id": second_id}}, "gz_admin")
    assert error_code(await api.gql(ME, token=second)) == "UNAUTHENTICATED"
    assert error_code(await api.gql(REVOKE, {"i": {"id": second_id}}, who="gz_admin")) == "CONFLICT"
    async with sessions() as session:
        events = (
            await session.exec(
                select(AuditEvent)
                .where(
                    AuditEvent.target_id == "gz.operator",
                    AuditEvent.actor != "cli:tokens-create",
                    AuditEvent.decision.is_(None),
                )
                .order_by(AuditEvent.id)
            )
        ).all()
    assert [e.action for e in events] == [
        "principal.issue_token",
        "principal.revoke_token",
        "principal.revoke_token",
    ]
    assert all(second not in e.detail for e in events)


async def test_token_refusals(api, sessions):
    for query, variables, field in [
        (REVOKE, {"i": {"id": 1, "prefix": "ssc_pt_"}}, "id"),
        (REVOKE, {"i": {}}, "id"),
        (REVOKE, {"i": {"prefix": "p" * 17}}, "prefix"),
        (ISSUE, {"i": {"days": 400}}, "days"),
    ]:
        before = await db_state(sessions)
        assert refusal(await api.gql(query, variables, who="gz_admin")) == ("BAD_INPUT", field)
        assert_only_denial(before, await db_state(sessions), "gz_admin")
    # Nobody revokes a token of a person above them; an unknown token looks the same.
    gd_token = (await token_rows(sessions, "gd.admin"))[0]
    for query, variables in [
        (REVOKE, {"i": {"id": gd_token.id}}),
        (REVOKE, {"i": {"id": 999_999}}),
    ]:
        before = await db_state(sessions)
        assert error_code(await api.gql(query, variables, who="gz_admin")) == "FORBIDDEN"
        assert_only_denial(before, await db_state(sessions), "gz_admin")
    # Anyone may give themselves a new token, an operator too, naming themself or not.
    data = await ok(api, ISSUE, {"i": {"name": "gz.operator"}}, "gz_operator")
    assert data["issueToken"]["token"]["token"].startswith(data["issueToken"]["token"]["prefix"])


# --- queries ------------------------------------------------------------------------------------


async def test_principals_of_a_subtree_page_by_page(api):
    seen, after = [], None
    while True:
        page = (await ok(api, PRINCIPALS, {"t": GZ, "first": 2, "after": after}, "gz_admin"))["principals"]
        seen += [e["node"]["name"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sorted(seen) == ["gz.admin", "gz.approver", "gz.auditor", "gz.operator", "th.admin"]
    assert len(seen) == len(set(seen)) == page["totalCount"]
    whole = (await ok(api, PRINCIPALS, {"t": "cn/440000"}, "gd_admin"))["principals"]
    assert whole["totalCount"] == 7
    tianhe = (await ok(api, PRINCIPALS, {"t": TH}, "gz_auditor"))["principals"]
    assert [e["node"]["name"] for e in tianhe["edges"]] == ["th.admin"]
    assert error_code(await api.gql(PRINCIPALS, {"t": GZ, "after": "%%%"}, who="gz_admin")) == "BAD_INPUT"


@pytest.mark.parametrize(
    ("who", "tenant"),
    [("sz_admin", GZ), ("th_admin", GZ), ("gz_operator", GZ), ("gz_admin", "cn/440000/440300/440399")],
)
async def test_principals_outside_reach_are_forbidden(api, sessions, who, tenant):
    before = await db_state(sessions)
    assert error_code(await api.gql(PRINCIPALS, {"t": tenant}, who=who)) == "FORBIDDEN"
    assert_only_denial(before, await db_state(sessions), who)


async def test_one_principal_shows_only_roles_in_reach_and_never_a_token(api, sessions):
    await ok(api, ASSIGN, {"i": {"name": "gz.operator", "tenant": SZ, "role": "auditor"}}, "gd_admin")
    seen_by_gz = (await ok(api, PRINCIPAL, {"n": "gz.operator"}, "gz_admin"))["principal"]
    seen_by_gd = (await ok(api, PRINCIPAL, {"n": "gz.operator"}, "gd_admin"))["principal"]
    assert seen_by_gz["roles"] == [{"role": "operator", "tenantPath": GZ}]
    assert {r["tenantPath"] for r in seen_by_gd["roles"]} == {GZ, SZ}
    response = await api.post(PRINCIPAL, {"n": "gz.operator"}, who="gd_admin")
    assert api.tokens["gz_operator"] not in response.text
    # Everyone sees themselves, an operator too (to find their own tokens).
    me = (await ok(api, PRINCIPAL, {"n": "gz.operator"}, "gz_operator"))["principal"]
    assert len(me["roles"]) == 2 and len(me["tokens"]) == 1
    # Outside reach and non-existent give the same answer, and both are audited.
    before = await db_state(sessions)
    hidden = await api.gql(PRINCIPAL, {"n": "sz.admin"}, who="gz_admin")
    missing = await api.gql(PRINCIPAL, {"n": "no.such.person"}, who="gz_admin")
    assert error_code(hidden) == error_code(missing) == "FORBIDDEN"
    after = await db_state(sessions)
    assert [d for _, _, _, d, _ in after["events"][len(before["events"]) :]] == ["deny", "deny"]
    assert error_code(await api.gql(PRINCIPAL, {"n": "Bad Name"}, who="gz_admin")) == "BAD_INPUT"
