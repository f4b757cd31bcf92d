import gc

import httpx
import pytest

from app.ops.tenants.apply import apply_tenant_files
from app.settings import Settings
from app.web import create_app
from tests.livesrv import serve


@pytest.fixture
async def server(db_url, sessions, tenants_dir):
    await apply_tenant_files(sessions, tenants_dir)
    with serve(create_app(Settings(database_url=db_url))) as base:
        yield base


async def gql(base: str, query: str, variables: dict | None = None) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(f"{base}/graphql", json={"query": query, "variables": variables or {}})


async def test_deep_query_is_refused(server):
    deep = "{ tenants " + "{ path " * 20 + "}" * 21
    body = (await gql(server, deep)).json()
    assert body.get("data") is None and body["errors"]


async def test_health_and_readiness(server):
    async with httpx.AsyncClient(timeout=5) as client:
        assert (await client.get(f"{server}/healthz")).json() == {"status": "ok"}
        ready = await client.get(f"{server}/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"


async def test_readiness_fails_when_the_database_is_unreachable(tmp_path):
    url = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"
    with serve(create_app(Settings(database_url=url))) as base:
        async with httpx.AsyncClient(timeout=10) as client:
            ready = await client.get(f"{base}/readyz")
            health = await client.get(f"{base}/healthz")
    assert ready.status_code == 503 and ready.json()["database"] == "unreachable"
    assert health.status_code == 200


async def test_unexpected_errors_are_masked(tmp_path):
    """No database tables at all: the resolver fails inside SQL, the client sees only INTERNAL."""
    # An empty SQLite file of the test's own, whichever database the run is on.
    with serve(create_app(Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}"))) as base:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(
                f"{base}/graphql",
                json={"query": "{ me { name } }"},
                headers={"Authorization": "Bearer x", "X-Request-Id": "req-42"},
            )
        body = response.json()
    assert response.status_code == 200
    assert body["errors"][0]["message"] == "Internal server error"
    assert body["errors"][0]["extensions"] == {"code": "INTERNAL", "requestId": "req-42"}
    assert "tenant" not in body["errors"][0]["message"].lower()


async def test_the_loaded_policy_is_frozen_out_of_the_garbage_collector(db_url, sessions, tenants_dir):
    """A full GC pass must not walk the policy: the worker freezes what it holds once it is loaded."""
    await apply_tenant_files(sessions, tenants_dir)
    gc.unfreeze()
    try:
        with serve(create_app(Settings(database_url=db_url))) as base:
            async with httpx.AsyncClient(timeout=5) as client:
                assert (await client.get(f"{base}/readyz")).status_code == 200
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()


MALFORMED = [
    ("not json", b"{query: me}", "application/json"),
    ("an empty body", b"", "application/json"),
    ("no query", b'{"variables": {}}', "application/json"),
    ("a query that is not text", b'{"query": 42}', "application/json"),
    ("a bare JSON value", b"42", "application/json"),
    ("a JSON string", b'"{ me { name } }"', "application/json"),
    ("a wrong content type", b"{ me { name } }", "text/plain"),
    ("a batch", b'[{"query": "{ me { name } }"}, {"query": "{ me { name } }"}]', "application/json"),
]


@pytest.mark.parametrize(("what", "body", "content_type"), MALFORMED, ids=[m[0] for m in MALFORMED])
async def test_requests_refused_before_graphql_runs_answer_in_the_error_shape(
    server, what, body, content_type
):
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            f"{server}/graphql", content=body, headers={"content-type": content_type}
        )
    assert 400 <= response.status_code < 500, (what, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    answer = response.json()
    assert answer["data"] is None and answer["errors"][0]["extensions"]["code"] == "BAD_INPUT", answer
    assert answer["errors"][0]["message"]
