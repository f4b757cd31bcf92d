"""Authentication and the tenant queries: each person sees their own subtree and nothing else."""

from datetime import UTC, datetime

import pytest
from sqlmodel import select

from app.store.tables import AuditEvent, PersonalToken
from tests.api.conftest import error_code

TENANTS = (
    "query($under: String, $first: Int, $after: String) "
    "{ tenants(under: $under, first: $first, after: $after) { totalCount"
    " edges { cursor node { path name } } pageInfo { hasNextPage endCursor } } }"
)
TENANT = "query($p: String!) { tenant(path: $p) { path name level } }"


@pytest.mark.parametrize("token", [None, "ssc_pt_not-a-real-token", ""])
async def test_missing_or_bad_token_is_unauthenticated(api, token):
    body = await api.gql("{ me { name } }", token=token) if token else await api.gql("{ me { name } }")
    assert error_code(body) == "UNAUTHENTICATED"


async def test_expired_and_revoked_tokens_are_unauthenticated(api, sessions):
    async with sessions() as session, session.begin():
        rows = (await session.exec(select(PersonalToken))).all()
        rows[0].expires_at = datetime(2020, 1, 1, tzinfo=UTC)
        rows[1].revoked_at = datetime.now(UTC)
    names = list(api.tokens)
    for who in names[:2]:
        assert error_code(await api.gql("{ me { name } }", who=who)) == "UNAUTHENTICATED"
    assert (await api.gql("{ me { name } }", who=names[2]))["data"]["me"]["name"] == names[2].replace(
        "_", "."
    )


async def test_me_lists_roles(api):
    me = (await api.gql("{ me { name roles { role tenantPath } } }", who="gz_admin"))["data"]["me"]
    assert me == {"name": "gz.admin", "roles": [{"role": "city_admin", "tenantPath": "cn/440000/440100"}]}


async def test_city_admin_sees_only_their_city(api):
    body = await api.gql(TENANTS, who="gz_admin")
    paths = [e["node"]["path"] for e in body["data"]["tenants"]["edges"]]
    assert paths[0] == "cn/440000/440100" and all(p.startswith("cn/440000/440100") for p in paths)
    assert body["data"]["tenants"]["totalCount"] == len(paths) == 5


async def test_keyset_pages_cover_the_list_once(api):
    seen, after = [], None
    while True:
        page = (await api.gql(TENANTS, {"first": 3, "after": after}, who="gd_admin"))["data"]["tenants"]
        seen += [e["node"]["path"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == page["totalCount"] == 11


@pytest.mark.parametrize(
    ("who", "path"),
    [
        ("gz_admin", "cn/440000/440300"),  # sibling
        ("th_admin", "cn/440000/440100"),  # child looking up
        ("gz_admin", "cn/440000/440300/440399"),  # outside and does not exist: same answer
        ("gz_operator", "cn/440000/440100"),  # operators do not read tenants (DESIGN.md §5 table)
    ],
)
async def test_foreign_tenants_are_forbidden_and_audited(api, sessions, who, path):
    assert error_code(await api.gql(TENANT, {"p": path}, who=who)) == "FORBIDDEN"
    assert error_code(await api.gql(TENANTS, {"under": path}, who=who)) == "FORBIDDEN"
    async with sessions() as session:
        denials = (await session.exec(select(AuditEvent).where(AuditEvent.decision == "deny"))).all()
    assert len(denials) == 2 and all(d.actor == f"principal:{who.replace('_', '.')}" for d in denials)


async def test_own_tenant_and_missing_child(api):
    assert (await api.gql(TENANT, {"p": "cn/440000/440100/440106"}, who="gz_admin"))["data"]["tenant"][
        "level"
    ] == "county"
    assert (await api.gql(TENANT, {"p": "cn/440000/440100/440113"}, who="gz_admin"))["data"]["tenant"] is None


async def test_bad_path_and_bad_cursor_are_bad_input(api):
    body = await api.gql(TENANT, {"p": "cn/440000/450100"}, who="gd_admin")
    assert error_code(body) == "BAD_INPUT" and body["errors"][0]["extensions"]["reason"] == "BAD_TENANT_PATH"
    assert error_code(await api.gql(TENANTS, {"after": "%%%"}, who="gd_admin")) == "BAD_INPUT"
    assert error_code(await api.gql(TENANTS, {"first": 10_000}, who="gd_admin")) == "BAD_INPUT"
