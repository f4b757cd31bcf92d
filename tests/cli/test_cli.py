"""The `ssc` command and `make serve`, run as real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import httpx
import pytest

from tests.cli.commands import ROOT, TIMEOUT_S, ssc
from tests.procsrv import free_port


def test_help_lists_every_command(env):
    result = ssc(env, "--help")
    assert result.returncode == 0
    for command in ("serve", "migrate", "tenants", "tokens", "demo"):
        assert command in result.stdout


def test_apply_then_dry_run_reports_nothing_to_change(env):
    assert ssc(env, "migrate").returncode == 0
    first = ssc(env, "tenants", "apply", "tenants/")
    assert first.returncode == 0, first.stderr
    assert "applied:" in first.stdout
    dry = ssc(env, "tenants", "apply", "tenants/", "--dry-run")
    assert dry.returncode == 0
    assert "nothing to change" in dry.stdout


def test_bad_file_exits_non_zero_naming_file_line_and_key(env, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[tenant]]\npath = "cn"\nname = "n"\n\n[[outlet]]\nid = "o1"\ntenant = "cn"\n'
        'kind = "casino"\nname = "x"\n',
        encoding="utf-8",
    )
    result = ssc(env, "tenants", "apply", str(bad))
    assert result.returncode == 1
    assert f"{bad}:8: outlet[0].kind: unknown outlet kind 'casino'" in result.stderr.replace("\n", "")
    assert "nothing was written" in result.stderr


def test_unmigrated_database_is_refused_clearly(tmp_path):
    env = {**os.environ, "SSC_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}
    result = ssc(env, "tenants", "apply", "tenants/")
    assert result.returncode == 1
    assert "ssc migrate" in result.stderr


def test_tokens_and_demo_generate(env, tmp_path):
    ssc(env, "tenants", "apply", "tenants/")
    token = ssc(env, "tokens", "create", "--tenant", "cn/440000", "--role", "province_admin")
    assert token.returncode == 0, token.stderr
    assert token.stdout.strip().startswith("ssc_pt_")
    refused = ssc(env, "tokens", "create", "--tenant", "cn/440000", "--role", "county_admin")
    assert refused.returncode == 1 and "ROLE_LEVEL" in refused.stderr
    demo = ssc(env, "demo", "generate", "--cards", "200", "--outlets", "10", "--seed", "1")
    assert demo.returncode == 0, demo.stderr
    assert "generated 10 outlets and 200 cards" in demo.stdout
    target = tmp_path / "cards.csv"
    assert ssc(env, "demo", "generate", "--cards", "20", "--csv", str(target)).returncode == 0
    assert len(target.read_text(encoding="utf-8").splitlines()) == 21


TENANTS_QUERY = "{ tenants { edges { node { path name } } } }"


CREATE_OUTLET = "mutation($i: CreateOutletInput!) { createOutlet(input: $i) { outlet { id version } } }"
GRANT = "mutation($i: GrantServiceInput!) { grantService(input: $i) { grant { id state service } } }"
SEE = 'query { outlet(id: "sz-ns-new-station") { grants { id state service } effectiveServices } }'


def _register_and_grant(base: str, token: str) -> dict:
    """The issue's walk-through: register an outlet, grant it password_change, read the grant back."""
    headers = {"Authorization": f"Bearer {token}"}

    def call(query: str, variables: dict | None = None) -> dict:
        body = httpx.post(
            f"{base}/graphql",
            json={"query": query, "variables": variables or {}},
            headers=headers,
            timeout=20,
        ).json()
        assert "errors" not in body, body
        return body["data"]

    call(
        CREATE_OUTLET,
        {
            "i": {
                "id": "sz-ns-new-station",
                "tenant": "cn/440000/440300/440305",
                "kind": "grassroots_platform",
                "name": "南山区新站街道社会保障服务站",
                "nbsCode": "440305013",
            }
        },
    )
    call(
        GRANT,
        {
            "i": {
                "tenant": "cn/440000/440300/440305",
                "outletId": "sz-ns-new-station",
                "service": "password_change",
                "validFrom": "2026-01-01T00:00:00Z",
                "documentRef": "南人社函〔2026〕8号",
            }
        },
    )
    deadline = time.monotonic() + 5
    while True:  # the serving worker picks the grant up from the change log within ~100 ms
        seen = call(SEE)["outlet"]
        if "password_change" in seen["effectiveServices"] or time.monotonic() > deadline:
            return seen


def _serve_once(env: dict[str, str], token: str, then=None) -> list[str]:
    """Run `make serve`, ask for the tenants over HTTP (and run `then`), stop it; returns the paths."""
    port = free_port()
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "serve"],
        cwd=ROOT,
        env={**env, "SSC_PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                response = httpx.post(
                    f"http://127.0.0.1:{port}/graphql",
                    json={"query": TENANTS_QUERY},
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=2,
                )
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "make serve did not come up"
                time.sleep(0.2)
        if then is not None:
            then(f"http://127.0.0.1:{port}", token)
        return [e["node"]["path"] for e in response.json()["data"]["tenants"]["edges"]]
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=TIMEOUT_S)


@pytest.mark.slow
def test_make_serve_twice(env):
    """The README's path: migrate and load the demo, create an administrator's token, query."""
    assert ssc(env, "migrate").returncode == 0
    assert ssc(env, "tenants", "apply", "tenants/").returncode == 0
    token = ssc(
        env, "tokens", "create", "--tenant", "cn/440000/440300/440305", "--role", "county_admin"
    ).stdout.strip()
    seen = {}
    first = _serve_once(env, token, then=lambda base, t: seen.update(_register_and_grant(base, t)))
    # Shenzhen turns two-person approval off for its districts, so the grant is active at once.
    assert [(g["service"], g["state"]) for g in seen["grants"]] == [("password_change", "active")]
    assert "password_change" in seen["effectiveServices"]
    assert first == ["cn/440000/440300/440305"]
    assert _serve_once(env, token) == first  # a second run neither fails nor duplicates
