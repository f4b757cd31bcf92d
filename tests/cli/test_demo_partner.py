"""`ssc demo partner`: the partner guide's quick start works from a fresh demo database."""

from __future__ import annotations

import httpx

from app.settings import Settings
from app.web import create_app
from tests.cli.commands import ssc
from tests.livesrv import serve

OUTLET = "gz-th-pharm-dasenlin"
STATUS = (
    "query($n: String!, $id: String!, $p: String!) {"
    " cardStatus(cardNumber: $n, idNumber: $id, purpose: $p) { status pinState idNumberMasked } }"
)
CHANGE = "mutation($i: ChangePasswordInput!) { changePassword(input: $i) { card { pinState } } }"


def test_an_outlet_is_ready_for_a_partner_test_in_one_command(env, db_url):
    assert ssc(env, "migrate").returncode == 0
    assert ssc(env, "tenants", "apply", "tenants/").returncode == 0
    done = ssc(env, "demo", "partner", "--outlet", OUTLET)
    assert done.returncode == 0, done.stderr
    values = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert values["SERVICE"] == "password_change" and values["SSC_KEY"].startswith("ssc_pk_")
    assert "Store the key now" in done.stderr
    settings = Settings(database_url=db_url, key_file=env["SSC_KEY_FILE"])
    with serve(create_app(settings)) as base:
        headers = {"X-Api-Key": values["SSC_KEY"]}
        variables = {"n": values["CARD_NUMBER"], "id": values["ID_NUMBER"], "p": values["SERVICE"]}
        status = httpx.post(
            f"{base}/graphql", json={"query": STATUS, "variables": variables}, headers=headers
        )
        changed = httpx.post(
            f"{base}/graphql",
            json={
                "query": CHANGE,
                "variables": {
                    "i": {
                        "cardNumber": values["CARD_NUMBER"],
                        "idNumber": values["ID_NUMBER"],
                        "oldPin": "123456",
                        "newPin": "258036",
                        "idempotencyKey": "quick-start-0001",
                    }
                },
            },
            headers=headers,
        )
    assert status.json()["data"]["cardStatus"]["status"] == "normal", status.text
    assert values["ID_NUMBER"] not in status.text  # masked
    assert changed.json()["data"]["changePassword"]["card"]["pinState"] == "set", changed.text


def test_it_refuses_what_the_outlet_may_not_hold_and_production(env):
    assert ssc(env, "migrate").returncode == 0
    assert ssc(env, "tenants", "apply", "tenants/").returncode == 0
    refused = ssc(env, "demo", "partner", "--outlet", OUTLET, "--service", "financial_activation")
    assert refused.returncode == 1 and "may not hold" in refused.stderr and refused.stdout == ""
    unknown = ssc(env, "demo", "partner", "--outlet", "no-such-outlet")
    assert unknown.returncode == 1 and "no open outlet" in unknown.stderr
    production = {
        **env,
        "SSC_ENV": "production",
        "SSC_DATA_KEY": "x" * 43 + "=",
        "SSC_LOOKUP_KEY": "y" * 43 + "=",
    }
    assert ssc(production, "demo", "partner", "--outlet", OUTLET).returncode == 1
