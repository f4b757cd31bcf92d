"""A live server on the demo tree, and people with tokens at several places in it."""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import select

from app.ops.principals.credentials import create_principal_with_token
from app.ops.tenants.apply import apply_tenant_files
from app.settings import Settings
from app.store.tables import Tenant
from app.web import create_app
from tests.api.grant_helpers import GZ
from tests.api.partner_world import open_world
from tests.livesrv import serve

PEOPLE = {
    "gd_admin": ("cn/440000", "province_admin"),
    "gz_admin": ("cn/440000/440100", "city_admin"),
    "sz_admin": ("cn/440000/440300", "city_admin"),
    "th_admin": ("cn/440000/440100/440106", "county_admin"),
    "gz_operator": ("cn/440000/440100", "operator"),
    "gz_approver": ("cn/440000/440100", "approver"),
    "gz_auditor": ("cn/440000/440100", "auditor"),
}


class Api:
    def __init__(self, base: str, tokens: dict[str, str]) -> None:
        self.base = base
        self.tokens = tokens

    async def post(
        self, query: str, variables: dict | None = None, *, who: str | None = None, token: str | None = None
    ) -> httpx.Response:
        headers = {}
        if who is not None or token is not None:
            headers["Authorization"] = f"Bearer {token or self.tokens[who]}"
        async with httpx.AsyncClient(timeout=20) as client:
            return await client.post(
                f"{self.base}/graphql", json={"query": query, "variables": variables or {}}, headers=headers
            )

    async def gql(self, query: str, variables: dict | None = None, **kw) -> dict:
        response = await self.post(query, variables, **kw)
        assert response.status_code == 200, response.text
        return response.json()


def error_code(body: dict) -> str | None:
    return body["errors"][0]["extensions"]["code"] if body.get("errors") else None


@pytest.fixture
async def served(db_url, sessions, tenants_dir):
    """The demo tree, the people of PEOPLE with their tokens, and a live server: (Api, the app), so
    that a test can also watch the app's engine."""
    await apply_tenant_files(sessions, tenants_dir)
    tokens = {}
    for name, (tenant, role) in PEOPLE.items():
        issued = await create_principal_with_token(
            sessions, tenant_path=tenant, role=role, name=name.replace("_", ".")
        )
        tokens[name] = issued.token
    app = create_app(Settings(database_url=db_url))
    with serve(app) as base:
        yield Api(base, tokens), app


@pytest.fixture
async def api(served) -> Api:
    """`served` for tests that only call the API."""
    return served[0]


@pytest.fixture
async def no_approval(api, sessions):
    """Guangzhou decides alone (its tenant file asks for two-person approval; set here in the database,
    under the API's tighten-only rule)."""
    async with sessions() as session, session.begin():
        tenant = (await session.exec(select(Tenant).where(Tenant.path == GZ))).one()
        tenant.two_person_approval = False
    return api


@pytest.fixture
async def world(db_url, sessions, tenants_dir):
    """The partner side: the demo tree, cards, keys and a live server (tests/api/partner_world.py)."""
    async with open_world(db_url, sessions, tenants_dir) as opened:
        yield opened
