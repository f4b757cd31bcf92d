"""Conflicting changes sent at once to two server processes on one database: exactly one wins.

The attack of the security review (issue 11, item 1): a suspended grant with `revokeGrant(v2)` on
one worker and `resumeGrant(v2)` on another, at the same instant. Both used to succeed (the version
was compared outside the write lock), and the revoked grant ended active. Every versioned change
must be a compare-and-set that cannot interleave: grants, outlets, tenant settings, principals,
ceilings and partner keys. Each round sends the conflicting requests concurrently to two `ssc
serve` processes and checks that exactly one is answered success and that the database holds the
winner's change, whole.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlmodel import func, select

from app.ops.principals.credentials import create_principal_with_token
from app.ops.tenants.apply import apply_tenant_files
from app.store.tables import AuditEvent, Grant, Outlet, PolicyLine, Tenant
from tests.api.grant_helpers import GRANT_SERVICE, GZ, RESUME, REVOKE, SUSPEND, grant_input
from tests.procsrv import workers

pytestmark = pytest.mark.slow

ROUNDS = 10


class Two:
    """Two workers and the tokens of the people of the test."""

    def __init__(self, bases: list[str], tokens: dict[str, str]) -> None:
        self.bases, self.tokens = bases, tokens

    async def call(self, worker: int, who: str, query: str, variables: dict) -> dict:
        async with httpx.AsyncClient(timeout=60) as client:
            response = await client.post(
                f"{self.bases[worker]}/graphql",
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {self.tokens[who]}"},
            )
        assert response.status_code == 200, response.text
        return response.json()

    async def at_once(self, *calls: tuple[int, str, str, dict]) -> list[dict]:
        return list(await asyncio.gather(*(self.call(*c) for c in calls)))


def outcome(bodies: list[dict]) -> tuple[list[int], list[str]]:
    """Indexes of the successful answers, and the codes of the refused ones."""
    won = [i for i, body in enumerate(bodies) if not body.get("errors")]
    codes = [body["errors"][0]["extensions"]["code"] for body in bodies if body.get("errors")]
    return won, codes


@pytest.fixture
async def two(db_url, sessions, tenants_dir, tmp_path):
    await apply_tenant_files(sessions, tenants_dir)
    async with sessions() as session, session.begin():
        (await session.exec(select(Tenant).where(Tenant.path == GZ))).one().two_person_approval = False
    tokens = {}
    for name in ("gd_admin", "gz_admin"):
        tenant = "cn/440000" if name == "gd_admin" else GZ
        role = "province_admin" if name == "gd_admin" else "city_admin"
        issued = await create_principal_with_token(sessions, tenant_path=tenant, role=role, name=name)
        tokens[name] = issued.token
    with workers(2, db_url, tmp_path / "keys.env") as bases:
        yield Two(bases, tokens)


async def _grant(two: Two) -> dict:
    body = await two.call(0, "gz_admin", GRANT_SERVICE, {"i": grant_input()})
    assert not body.get("errors"), body
    return body["data"]["grantService"]["grant"]


def _change(grant: dict, version: int) -> dict:
    return {"i": {"id": grant["id"], "reason": "race", "expectedVersion": version}}


async def _grant_lines(sessions, grant_id: str) -> list[str]:
    async with sessions() as session:
        return list(
            (
                await session.exec(
                    select(PolicyLine.ptype).where(
                        PolicyLine.source == "grant", PolicyLine.source_id == grant_id
                    )
                )
            ).all()
        )


async def test_revoke_and_resume_of_a_suspended_grant_one_wins(two, sessions):
    for _ in range(ROUNDS):
        grant = await _grant(two)
        suspended = await two.call(0, "gz_admin", SUSPEND, _change(grant, 1))
        assert suspended["data"]["suspendGrant"]["grant"]["version"] == 2
        bodies = await two.at_once(
            (0, "gz_admin", REVOKE, _change(grant, 2)), (1, "gz_admin", RESUME, _change(grant, 2))
        )
        won, codes = outcome(bodies)
        assert len(won) == 1 and codes == ["CONFLICT"], bodies
        winner = "revoked" if won == [0] else "active"
        async with sessions() as session:
            row = await session.get(Grant, int(grant["id"]))
        assert (row.state, row.version) == (winner, 3)
        # The policy follows the winner: no line for a revoked grant, its allow line for an active one.
        assert await _grant_lines(sessions, grant["id"]) == ([] if winner == "revoked" else ["p"])


async def test_revoke_and_suspend_of_an_active_grant_one_wins(two, sessions):
    for _ in range(ROUNDS):
        grant = await _grant(two)
        bodies = await two.at_once(
            (0, "gz_admin", REVOKE, _change(grant, 1)), (1, "gz_admin", SUSPEND, _change(grant, 1))
        )
        won, codes = outcome(bodies)
        assert len(won) == 1 and codes == ["CONFLICT"], bodies
        winner = "revoked" if won == [0] else "suspended"
        async with sessions() as session:
            row = await session.get(Grant, int(grant["id"]))
        assert (row.state, row.version) == (winner, 2)
        assert await _grant_lines(sessions, grant["id"]) == ([] if winner == "revoked" else ["s"])


UPDATE_OUTLET = "mutation($i: UpdateOutletInput!) { updateOutlet(input: $i) { outlet { name version } } }"
CREATE_OUTLET = "mutation($i: CreateOutletInput!) { createOutlet(input: $i) { outlet { id version } } }"


async def test_outlet_updates_with_one_version_accept_one(two, sessions):
    outlet = {"id": "gz-race", "tenant": GZ, "kind": "designated_pharmacy", "name": "竞态药房"}
    assert not (await two.call(0, "gz_admin", CREATE_OUTLET, {"i": outlet})).get("errors")
    for version in range(1, ROUNDS + 1):
        calls = [
            (
                n % 2,
                "gz_admin",
                UPDATE_OUTLET,
                {"i": {"id": "gz-race", "expectedVersion": version, "name": f"药房{version}-{n}"}},
            )
            for n in range(4)
        ]
        bodies = await two.at_once(*calls)
        won, codes = outcome(bodies)
        assert len(won) == 1 and codes == ["CONFLICT"] * 3, bodies
        async with sessions() as session:
            row = await session.get(Outlet, "gz-race")
        assert (row.name, row.version) == (f"药房{version}-{won[0]}", version + 1)
    async with sessions() as session:
        accepted = (
            await session.exec(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "outlet.update", AuditEvent.decision.is_(None))
            )
        ).one()
    assert accepted == ROUNDS  # one accepted update per version, never the same version twice


SETTINGS = (
    "mutation($i: UpdateTenantSettingsInput!) { updateTenantSettings(input: $i) { tenant { version } } }"
)


async def test_tenant_settings_with_one_version_accept_one(two, sessions):
    async with sessions() as session:
        first = (await session.exec(select(Tenant.version).where(Tenant.path == GZ))).one()
    for version in range(first, first + ROUNDS):
        bodies = await two.at_once(
            *(
                (
                    n,
                    "gz_admin",
                    SETTINGS,
                    {
                        "i": {
                            "tenant": GZ,
                            "expectedVersion": version,
                            "pinLockThreshold": 4 + 2 * (version % 3) + n,
                        }
                    },
                )
                for n in range(2)
            )
        )
        won, codes = outcome(bodies)
        assert len(won) == 1 and codes == ["CONFLICT"], bodies


SET_CEILING = "mutation($i: SetCeilingInput!) { setCeiling(input: $i) { ceiling { version services } } }"


async def test_ceilings_with_one_version_accept_one(two):
    for version in range(ROUNDS):
        services = [["activation", "info_inquiry"], ["activation"]]
        bodies = await two.at_once(
            *(
                (
                    n,
                    "gd_admin",
                    SET_CEILING,
                    {
                        "i": {
                            "tenant": "cn/440000",
                            "outletKind": "designated_pharmacy",
                            "services": services[n],
                            "expectedVersion": version,
                        }
                    },
                )
                for n in range(2)
            )
        )
        won, codes = outcome(bodies)
        assert len(won) == 1 and codes == ["CONFLICT"], bodies
        assert bodies[won[0]]["data"]["setCeiling"]["ceiling"]["version"] == version + 1


CREATE_PRINCIPAL = (
    "mutation($i: CreatePrincipalInput!) { createPrincipal(input: $i) { principal { name version } } }"
)
DEACTIVATE = (
    "mutation($i: DeactivatePrincipalInput!) { deactivatePrincipal(input: $i) { principal { active } } }"
)


async def test_deactivations_of_one_person_accept_one(two):
    for n in range(ROUNDS):
        name = f"gz.clerk{n}"
        created = await two.call(
            0, "gz_admin", CREATE_PRINCIPAL, {"i": {"name": name, "tenant": GZ, "role": "operator"}}
        )
        assert not created.get("errors"), created
        change = {"i": {"name": name, "reason": "left", "expectedVersion": 1}}
        bodies = await two.at_once((0, "gz_admin", DEACTIVATE, change), (1, "gz_admin", DEACTIVATE, change))
        won, codes = outcome(bodies)
        assert len(won) == 1 and codes == ["CONFLICT"], bodies


CREATE_KEY = "mutation($i: CreatePartnerKeyInput!) { createPartnerKey(input: $i) { prefix } }"
REVOKE_KEY = "mutation($i: RevokePartnerKeyInput!) { revokePartnerKey(input: $i) { partnerKey { id } } }"


async def test_revocations_of_one_key_accept_one(two):
    for _ in range(ROUNDS):
        created = await two.call(0, "gz_admin", CREATE_KEY, {"i": {"outletId": "gz-th-wushan"}})
        prefix = created["data"]["createPartnerKey"]["prefix"]
        change = {"i": {"prefix": prefix, "reason": "compromised"}}
        bodies = await two.at_once((0, "gz_admin", REVOKE_KEY, change), (1, "gz_admin", REVOKE_KEY, change))
        won, codes = outcome(bodies)
        assert len(won) == 1 and codes == ["CONFLICT"], bodies
