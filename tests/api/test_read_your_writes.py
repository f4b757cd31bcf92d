"""Every answer reflects what was acknowledged before it, on one worker (issue 12).

A grant answered `active` is in the outlet's `effectiveServices` and lets the outlet's partner call
through in the very next requests; a revocation answered `revoked` refuses the very next partner
call. The worker applies its own committed policy changes to its index before it answers.
"""

from __future__ import annotations

import httpx
import pytest

from app.ops.principals.credentials import create_principal_with_token
from tests.api.partner_world import GD, PHARMACY, pin_change_input

pytestmark = pytest.mark.slow

ROUNDS = 1000
GRANT = "mutation($i: GrantServiceInput!) { grantService(input: $i) { grant { id state } revision } }"
REVOKE = "mutation($i: ChangeGrantInput!) { revokeGrant(input: $i) { grant { state } revision } }"
SERVICES = '{ outlet(id: "' + PHARMACY + '") { effectiveServices } }'
STATUS = (
    "query($n: String!, $id: String!) {"
    ' cardStatus(cardNumber: $n, idNumber: $id, purpose: "password_change") { pinState } }'
)
CHANGE = "mutation($i: ChangePasswordInput!) { changePassword(input: $i) { card { pinState } } }"
PINS = ("123456", "258036", "147025")


class Caller:
    """One kept-alive connection for all the calls of the test (a thousand rounds of five calls)."""

    def __init__(self, client: httpx.AsyncClient, base: str, headers: dict[str, str]) -> None:
        self.client, self.url, self.headers = client, f"{base}/graphql", headers

    async def gql(self, query: str, variables: dict | None = None) -> dict:
        response = await self.client.post(
            self.url, json={"query": query, "variables": variables or {}}, headers=self.headers
        )
        assert response.status_code == 200, response.text
        return response.json()


def grant_input(n: int) -> dict:
    return {
        "i": {
            "tenant": GD,
            "outletId": PHARMACY,
            "service": "password_change",
            "validFrom": "2026-01-01T00:00:00Z",
            "documentRef": f"粤人社函〔2026〕{n}号",
        }
    }


def pin_change(card, n: int) -> dict:
    """The n-th PIN change of the test: 123456 -> 258036 -> 147025 -> 258036 ..."""
    old = PINS[0] if n == 0 else PINS[1 + (n - 1) % 2]
    new = PINS[1 + n % 2]
    return pin_change_input(card, old, new, f"ryw-change-{n:05d}")


async def test_a_thousand_grants_and_revocations_are_in_force_from_their_answers(world):
    issued = await create_principal_with_token(
        world.sessions, tenant_path=GD, role="province_admin", name="gd.admin"
    )
    card = world.cards["th"]
    card_vars = {"n": card.card_number, "id": card.id_number}
    stale, revisions = [], []
    async with httpx.AsyncClient(timeout=30) as client:
        admin = Caller(client, world.partner.base, {"Authorization": f"Bearer {issued.token}"})
        pharmacy = Caller(client, world.partner.base, {"X-Api-Key": world.partner.keys[PHARMACY]})
        for n in range(ROUNDS):
            granted = (await admin.gql(GRANT, grant_input(n)))["data"]["grantService"]
            assert granted["grant"]["state"] == "active", granted
            revisions.append(int(granted["revision"]))
            services = (await admin.gql(SERVICES))["data"]["outlet"]["effectiveServices"]
            if "password_change" not in services:
                stale.append((n, "effectiveServices after the grant", services))
            if n % 100 == 0:  # now and then the change itself, through its partner mutation
                answer = await pharmacy.gql(CHANGE, pin_change(card, n // 100))
                if answer.get("errors"):
                    stale.append((n, "changePassword after the grant", answer["errors"][0]["extensions"]))
            allowed = await pharmacy.gql(STATUS, card_vars)
            if allowed.get("errors"):
                stale.append((n, "cardStatus after the grant", allowed["errors"][0]["extensions"]))
            revoke = {"i": {"id": granted["grant"]["id"], "reason": "检查", "expectedVersion": 1}}
            revoked = (await admin.gql(REVOKE, revoke))["data"]["revokeGrant"]
            assert revoked["grant"]["state"] == "revoked", revoked
            revisions.append(int(revoked["revision"]))
            refused = await pharmacy.gql(STATUS, card_vars)
            if not refused.get("errors"):
                stale.append((n, "cardStatus after the revocation", refused["data"]))
    assert stale == []
    # Each answer's revision holds its change: revisions only grow.
    assert revisions == sorted(revisions) and len(set(revisions)) == 2 * ROUNDS
