"""Two-person approval: a proposal is enforced only once another person approves it, and nobody
approves their own proposal, not even through an account one of them created for the other."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.store.tables import AuditEvent, Ceiling, Principal, Tenant
from tests.api.conftest import error_code
from tests.api.grant_helpers import (
    APPROVE,
    GD,
    GRANT_SERVICE,
    GZ,
    OUTSIDERS,
    REJECT,
    TH,
    add_person,
    allowed,
    business,
    call,
    change,
    create,
    db_state,
    grant_input,
)
from tests.audit_helpers import assert_only_denial


def approval(grant: dict, version: int = 1) -> dict:
    return {"i": {"id": grant["id"], "expectedVersion": version}}


async def test_approval_puts_a_proposal_in_force(api, sessions, db_url):
    grant = await create(api, "gz_operator")
    assert not allowed(await business(sessions, db_url), "gz-th-wushan", TH, "password_change")
    body = await api.gql(APPROVE, approval(grant), who="gz_approver")
    approved = body["data"]["approveGrant"]["grant"]
    assert approved["state"] == "active" and approved["version"] == 2
    assert (approved["proposedBy"], approved["approvedBy"]) == ("gz.operator", "gz.approver")
    assert allowed(await business(sessions, db_url), "gz-th-wushan", TH, "password_change")
    async with sessions() as session:
        event = (await session.exec(select(AuditEvent).where(AuditEvent.action == "grant.approve"))).one()
    assert (event.tenant, event.actor, event.target_id) == (GZ, "principal:gz.approver", grant["id"])


async def test_an_approver_above_may_approve(api, sessions):
    """Approvers act in their whole subtree: a provincial approver approves a Guangzhou proposal."""
    token = await add_person(sessions, "gd.approver", GD, "approver")
    body = await api.gql(APPROVE, approval(await create(api, "gz_operator")), token=token)
    assert body["data"]["approveGrant"]["grant"]["approvedBy"] == "gd.approver"


async def test_rejection_keeps_it_out_of_force(api, sessions, db_url):
    grant = await create(api, "gz_operator")
    body = await api.gql(REJECT, change(grant, 1, "文号有误"), who="gz_approver")
    rejected = body["data"]["rejectGrant"]["grant"]
    assert (rejected["state"], rejected["stateReason"], rejected["approvedBy"]) == (
        "rejected",
        "文号有误",
        None,
    )
    assert not allowed(await business(sessions, db_url), "gz-th-wushan", TH, "password_change")
    assert error_code(await api.gql(APPROVE, approval(grant, 2), who="gz_approver")) == "CONFLICT"


async def test_a_proposer_cannot_approve_their_own(api, sessions):
    token = await add_person(sessions, "gz.both", GZ, "operator", more_roles=[("approver", GZ)])
    proposal = await api.gql(
        "mutation($i: GrantServiceInput!) { grantService(input: $i) { grant { id state } } }",
        {
            "i": {
                "tenant": GZ,
                "outletId": "gz-th-wushan",
                "service": "info_inquiry",
                "validFrom": "2026-01-01T00:00:00Z",
                "documentRef": "穗人社函〔2026〕9号",
            }
        },
        token=token,
    )
    grant = proposal["data"]["grantService"]["grant"]
    assert grant["state"] == "proposed"
    before = await db_state(sessions)
    body = await api.gql(APPROVE, approval(grant), token=token)
    assert error_code(body) == "FORBIDDEN" and "you proposed it" in body["errors"][0]["message"]
    assert_only_denial(before, await db_state(sessions), "gz_both")


@pytest.mark.parametrize(
    ("proposer", "approver_created_by", "proposer_created_by"),
    [
        ("gz_admin", "gz.admin", None),  # the approver's account was made by the proposer
        ("gz_admin", "gz.helper", "gz.admin"),  # ... by someone the proposer made
        ("gz_operator", None, "gz.approver2"),  # the proposer's account was made by the approver
    ],
)
async def test_created_by_links_count_as_the_same_person(
    api, sessions, proposer, approver_created_by, proposer_created_by
):
    if approver_created_by == "gz.helper":
        await add_person(sessions, "gz.helper", GZ, "city_admin", created_by="gz.admin")
    token = await add_person(sessions, "gz.approver2", GZ, "approver", created_by=approver_created_by)
    if proposer_created_by:
        async with sessions() as session, session.begin():
            person = (await session.exec(select(Principal).where(Principal.name == "gz.operator"))).one()
            creator = (
                await session.exec(select(Principal).where(Principal.name == proposer_created_by))
            ).one()
            person.created_by = creator.id
    grant = await create(api, proposer)
    before = await db_state(sessions)
    body = await api.gql(APPROVE, approval(grant), token=token)
    assert error_code(body) == "FORBIDDEN", body
    assert_only_denial(before, await db_state(sessions), "gz_approver2")
    # Another approver with no such link may.
    assert (await api.gql(APPROVE, approval(grant), who="gz_approver"))["data"]["approveGrant"]


CREATE_PERSON = (
    "mutation($i: CreatePrincipalInput!) { createPrincipal(input: $i) { enrolmentToken { token } } }"
)
REDEEM = "mutation { issueToken(input: {}) { token { token } } }"


async def enrol(api, creator: str, name: str, tenant: str, role: str) -> str:
    """An account made through the API by `creator` (one of PEOPLE, or a token), and the token its
    owner redeems for it."""
    made = await api.gql(
        CREATE_PERSON,
        {"i": {"name": name, "tenant": tenant, "role": role}},
        token=api.tokens.get(creator, creator),
    )
    enrolment = made["data"]["createPrincipal"]["enrolmentToken"]["token"]
    redeemed = await api.gql(REDEEM, token=enrolment)
    return redeemed["data"]["issueToken"]["token"]["token"]


async def test_sibling_accounts_cannot_hold_both_ends(api, sessions):
    """The security review (issue 11, item 3): an administrator creates an operator and an approver,
    receives both first credentials, proposes as one and approves as the other."""
    operator = await enrol(api, "gz_admin", "gz.op2", GZ, "operator")
    approver = await enrol(api, "gz_admin", "gz.ap2", GZ, "approver")
    body = await api.gql(GRANT_SERVICE, {"i": grant_input()}, token=operator)
    grant = body["data"]["grantService"]["grant"]
    before = await db_state(sessions)
    body = await api.gql(APPROVE, approval(grant), token=approver)
    assert error_code(body) == "FORBIDDEN", body
    message = body["errors"][0]["message"]
    assert "gz.op2" in message and "gz.admin" in message  # which link stands in the way
    api.tokens["gz_ap2"] = approver
    assert_only_denial(before, await db_state(sessions), "gz_ap2")
    # Further up counts too: gd.admin made gz.admin2, who made the proposer; gd.admin made the approver.
    admin2 = await enrol(api, "gd_admin", "gz.admin2", GZ, "city_admin")
    operator = await enrol(api, admin2, "gz.op4", GZ, "operator")
    approver = await enrol(api, "gd_admin", "gz.ap4", GZ, "approver")
    body = await api.gql(GRANT_SERVICE, {"i": grant_input()}, token=operator)
    body = await api.gql(APPROVE, approval(body["data"]["grantService"]["grant"]), token=approver)
    assert error_code(body) == "FORBIDDEN" and "gd.admin" in body["errors"][0]["message"], body


async def test_accounts_from_separate_lines_may_approve_each_other(api, sessions):
    """How a department meets the rule: proposers and approvers created by different account
    administrators who are not linked through creation themselves (here both bootstrapped)."""
    operator = await enrol(api, "gz_admin", "gz.op3", GZ, "operator")
    approver = await enrol(api, "gd_admin", "gz.ap3", GZ, "approver")
    body = await api.gql(GRANT_SERVICE, {"i": grant_input()}, token=operator)
    grant = body["data"]["grantService"]["grant"]
    approved = await api.gql(APPROVE, approval(grant), token=approver)
    assert approved["data"]["approveGrant"]["grant"]["state"] == "active", approved


@pytest.mark.parametrize("query", [APPROVE, REJECT])
@pytest.mark.parametrize(
    ("who", "code"),
    [*OUTSIDERS, ("gz_admin", "FORBIDDEN"), ("gz_operator", "FORBIDDEN"), ("sz_approver", "FORBIDDEN")],
)
async def test_outsiders_cannot_decide(api, sessions, query, who, code):
    token = await add_person(sessions, "sz.approver", "cn/440000/440300", "approver")
    grant = await create(api, "gz_admin")
    variables = approval(grant) if query == APPROVE else change(grant, 1)
    before = await db_state(sessions)
    if who == "sz_approver":
        body = await api.gql(query, variables, token=token)
    else:
        body = await call(api, query, variables, who)
    assert error_code(body) == code
    assert_only_denial(before, await db_state(sessions), who)


async def test_a_county_approver_cannot_approve_a_city_grant(api, sessions):
    token = await add_person(sessions, "th.approver", TH, "approver")
    grant = await create(api, "gz_operator")
    before = await db_state(sessions)
    assert error_code(await api.gql(APPROVE, approval(grant), token=token)) == "FORBIDDEN"
    assert_only_denial(before, await db_state(sessions), "th_approver")


async def test_approval_rechecks_the_ceiling(api, sessions):
    """A ceiling can appear between proposal and approval (here written straight to the table, as a
    concurrent change would); approving then is refused and changes nothing."""
    grant = await create(api, "gz_operator")
    async with sessions() as session, session.begin():
        province = (await session.exec(select(Tenant).where(Tenant.path == GD))).one()
        session.add(
            Ceiling(tenant_id=province.id, outlet_kind="grassroots_platform", services="info_inquiry")
        )
    before = await db_state(sessions)
    body = await api.gql(APPROVE, approval(grant), who="gz_approver")
    assert error_code(body) == "CEILING_EXCEEDED" and body["errors"][0]["extensions"]["ceilingTenant"] == GD
    assert_only_denial(before, await db_state(sessions), "gz_approver")


async def test_stale_version_and_bad_input(api, sessions):
    grant = await create(api, "gz_operator")
    for variables, query, code, field in [
        (approval(grant, 3), APPROVE, "CONFLICT", "expectedVersion"),
        (change(grant, 1, " "), REJECT, "BAD_INPUT", "reason"),
        ({"i": {"id": "12a", "expectedVersion": 1}}, APPROVE, "BAD_INPUT", "id"),
    ]:
        before = await db_state(sessions)
        body = await api.gql(query, variables, who="gz_approver")
        assert error_code(body) == code and body["errors"][0]["extensions"]["field"] == field
        assert_only_denial(before, await db_state(sessions), "gz_approver")
    body = await api.gql(APPROVE, {"i": {"id": "987654", "expectedVersion": 1}}, who="gz_approver")
    assert error_code(body) == "FORBIDDEN"  # like a grant outside the approver's reach


async def test_only_proposals_are_approved(api, sessions):
    token = await add_person(sessions, "sz.approver", "cn/440000/440300", "approver")
    grant = await create(api, "sz_admin", tenant="cn/440000/440300", outletId="sz-ft-huafu")
    assert grant["state"] == "active"
    assert error_code(await api.gql(APPROVE, approval(grant), token=token)) == "CONFLICT"
