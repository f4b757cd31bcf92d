"""Who could do what at any past time: every answer equals a replay of the change log.

Random grants, suspensions, resumptions, revocations and ceilings are made through the grant use
cases, the log position noted after each; then whoCan, whatCan and explainDecision at each of those
times are compared with the engine's own decision over the policy rebuilt from the log up to that
position (app/authz/decision.policy_decision on a fresh BusinessPolicy), outlet by outlet.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from app.authz.decision import OutletFacts, policy_decision
from app.authz.policy_state import BusinessPolicy
from app.authz.projection import policy_time
from app.domain.catalogue import FINANCIAL_SERVICES
from app.domain.errors import DomainError
from app.ops.auth import authenticate
from app.ops.compliance import reach
from app.ops.compliance.history import explain_decision, what_can_do, who_can_do
from app.ops.errors import OpsError
from app.ops.grants.ceilings import set_ceiling
from app.ops.grants.changes import GrantRequest, change_state, grant_service
from app.ops.principals.credentials import create_principal_with_token
from app.store import policy
from app.store.tables import Grant

GD, GZ, TH, YX = "cn/440000", "cn/440000/440100", "cn/440000/440100/440106", "cn/440000/440100/440104"
GRANTING = (GD, GZ, TH, YX)
SERVICES = ("activation", "password_change", "password_reset", "info_inquiry", "financial_activation")
OUTLETS = (
    "gz-th-wushan",
    "gz-th-ccb-tiyu",
    "gz-yx-icbc-dongfeng",
    "gz-th-pharm-dasenlin",
    "gz-th-hosp-tianhe",
)
KINDS = ("grassroots_platform", "bank_outlet", "designated_pharmacy", "designated_hospital")
_FINANCIAL = {s.value for s in FINANCIAL_SERVICES}


async def replayed(sessions, position: int) -> BusinessPolicy:
    """The policy a worker would hold after applying the log up to `position`."""
    state = BusinessPolicy()
    async with sessions() as session:
        for change in await policy.changes_after(session, 0, limit=1_000_000, before=position + 1):
            state.apply(change)
    return state


def engine_who_can(state: BusinessPolicy, tenant: str, service: str, at: str) -> dict[str, set[str]]:
    """Outlet -> grant ids, by asking the engine about each outlet its group lines know."""
    found = {}
    groups = [line[1:] for line in state.enforcer.lines() if line[0] == "g"]
    for outlet, kind, home in groups:
        facts = OutletFacts(outlet.removeprefix("outlet:"), kind.removeprefix("kind:"), home)
        if service in _FINANCIAL and facts.kind != "bank_outlet":
            continue
        decision = policy_decision(state, facts, tenant, service, at)
        if decision.allowed:
            found[facts.id] = set(decision.grant_ids)
    return found


async def position(sessions) -> int:
    async with sessions() as session:
        return await policy.last_change_id(session)


step = st.one_of(
    st.tuples(
        st.just("grant"),
        st.sampled_from(GRANTING),
        st.sampled_from(SERVICES),
        st.one_of(st.sampled_from(OUTLETS), st.sampled_from(KINDS).map(lambda k: "kind:" + k)),
        st.sampled_from((-30, -1, 2)),  # window start, days from now
        st.sampled_from((None, 1, 60)),  # window length in days
    ),
    st.tuples(st.sampled_from(("suspended", "active", "revoked")), st.integers(0, 30)),
    st.tuples(
        st.just("ceiling"),
        st.sampled_from((GD, GZ)),
        st.sampled_from(KINDS),
        st.sets(st.sampled_from(SERVICES[:4]), max_size=4),
    ),
)


async def perform(sessions, move) -> None:
    """One change through the use cases; a refused one (above a ceiling, a wrong state) is skipped."""
    now = datetime.now(UTC)
    try:
        async with sessions() as session, session.begin():
            if move[0] == "grant":
                _, tenant, service, target, start, days = move
                begins = now + timedelta(days=start)
                req = GrantRequest(
                    tenant=tenant,
                    service=service,
                    valid_from=begins,
                    valid_until=begins + timedelta(days=days) if days else None,
                    document_ref="粤人社函〔2026〕8号",
                    outlet_kind=target.removeprefix("kind:") if target.startswith("kind:") else None,
                    outlet_id=None if target.startswith("kind:") else target,
                )
                await grant_service(session, req, actor="principal:gd-admin")
            elif move[0] == "ceiling":
                _, tenant, kind, services = move
                await set_ceiling(session, tenant, kind, sorted(services), actor="principal:gd-admin")
            else:
                state, pick = move
                ids = (await session.exec(select(Grant.id).order_by(Grant.id))).all()
                if ids:
                    await change_state(
                        session, ids[pick % len(ids)], state, actor="principal:gz-admin", why="review"
                    )
    except (OpsError, DomainError):
        pass


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# by_name: the outlets named by lines are looked up by name (few) or read by their domain's range
# and intersected (a bulk grant's many); both ways must give the same answer.
@given(moves=st.lists(step, min_size=1, max_size=10), by_name=st.sampled_from((0, reach._BY_NAME)))
async def test_past_answers_equal_a_replay_of_the_log(sessions, auditor, moves, by_name):
    with patch.object(reach, "_BY_NAME", by_name):
        await _compare_with_replays(sessions, auditor, moves)


async def _compare_with_replays(sessions, auditor, moves):
    marks: list[tuple[datetime, int]] = []
    for move in moves:
        await perform(sessions, move)
        marks.append((datetime.now(UTC), await position(sessions)))
    for moment, logged in marks:
        state = await replayed(sessions, logged)
        at = policy_time(moment)
        for tenant in (TH, YX):
            for service in SERVICES:
                expected = engine_who_can(state, tenant, service, at)
                answer = await who_can_do(sessions, auditor, tenant, service, moment, limit=1000)
                got = {
                    h.outlet.row.id: {str(v.grant.grant.id) if v.grant else v.statutory for v in h.via}
                    for h in answer.page
                }
                assert got == expected, (moment, tenant, service)
                assert answer.total == len(expected)
        for outlet in OUTLETS:
            found = await what_can_do(sessions, auditor, outlet, moment)
            view, held = found.outlet, found.services
            facts = OutletFacts(outlet, view.row.kind, view.tenant_path)
            expected_services = {
                s
                for s in SERVICES
                if (s not in _FINANCIAL or facts.kind == "bank_outlet")
                and policy_decision(state, facts, view.tenant_path, s, at).allowed
            }
            assert {h.service for h in held} == expected_services, (moment, outlet)
            for service in ("password_change", "activation"):
                _, explained = await explain_decision(sessions, auditor, outlet, TH, service, moment)
                decision = policy_decision(state, facts, TH, service, at)
                assert (explained.allowed, explained.reason) == (decision.allowed, decision.reason)


async def test_the_present_answer_is_the_engines(sessions, auditor):
    for move in [
        ("grant", GZ, "password_change", "kind:grassroots_platform", -1, None),
        ("grant", TH, "password_reset", "gz-th-wushan", -1, 60),
        ("ceiling", GD, "designated_pharmacy", {"password_change"}),
    ]:
        await perform(sessions, move)
    state = BusinessPolicy()
    async with sessions() as session:
        lines, _ = await policy.snapshot(session)
    state.load(lines)
    for service in SERVICES:
        answer = await who_can_do(sessions, auditor, TH, service, limit=1000)
        expected = engine_who_can(state, TH, service, policy_time(answer.at))
        assert {h.outlet.row.id for h in answer.page} == set(expected)
    wushan = await who_can_do(sessions, auditor, TH, "password_change")
    assert "gz-th-wushan" in {h.outlet.row.id for h in wushan.page}
    # The ceiling took activation from pharmacies: the statutory first-use line no longer holds.
    activation = await who_can_do(sessions, auditor, TH, "activation", limit=1000)
    ids = {h.outlet.row.id for h in activation.page}
    assert "gz-th-hosp-tianhe" in ids and "gz-th-pharm-dasenlin" not in ids
    via = next(h for h in activation.page if h.outlet.row.id == "gz-th-hosp-tianhe").via
    assert [v.statutory for v in via] == ["builtin:hospital_first_use"]


async def test_a_revoked_grant_still_answers_for_the_time_it_held(sessions, auditor):
    await perform(sessions, ("grant", TH, "password_reset", "gz-th-wushan", -1, None))
    held = datetime.now(UTC)
    await perform(sessions, ("revoked", 0))
    now = await who_can_do(sessions, auditor, TH, "password_reset")
    then = await who_can_do(sessions, auditor, TH, "password_reset", held)
    assert now.total == 0 and then.total == 1
    (via,) = then.page[0].via
    assert via.grant is not None and via.grant.grant.state == "revoked"
    assert via.grant.grant.document_ref == "粤人社函〔2026〕8号" and via.scope == TH
    holdings = await what_can_do(sessions, auditor, "gz-th-wushan", held)
    assert holdings.open and "password_reset" in {s.service for s in holdings.services}
    _, explained = await explain_decision(sessions, auditor, "gz-th-wushan", TH, "password_reset", held)
    assert explained.allowed and explained.via[0].grant.grant.id == via.grant.grant.id
    _, explained = await explain_decision(sessions, auditor, "gz-th-wushan", TH, "password_reset")
    assert not explained.allowed and explained.reason == "NO_GRANT"


async def test_bad_times_tenants_and_outlets_are_refused_with_codes(sessions, auditor):
    await perform(sessions, ("grant", TH, "password_reset", "gz-th-wushan", -1, None))
    cases = [
        (who_can_do(sessions, auditor, TH, "password_reset", datetime(2001, 1, 1, tzinfo=UTC)), "BAD_INPUT"),
        (
            who_can_do(sessions, auditor, TH, "password_reset", datetime.now(UTC) + timedelta(days=1)),
            "BAD_INPUT",
        ),
        (who_can_do(sessions, auditor, TH, "password_reset", datetime(2026, 3, 3)), "BAD_INPUT"),
        (who_can_do(sessions, auditor, TH, "no_such_service"), "BAD_INPUT"),
        (who_can_do(sessions, auditor, "cn/440000/440100/440113", "password_reset"), "NOT_FOUND"),
        (who_can_do(sessions, auditor, "cn/110000", "password_reset"), "FORBIDDEN"),
        (who_can_do(sessions, auditor, "cn/\x00", "password_reset"), "BAD_INPUT"),
        (what_can_do(sessions, auditor, "no-such-outlet"), "FORBIDDEN"),
    ]
    for call, code in cases:
        with pytest.raises((OpsError, DomainError)) as refused:
            await call
        assert refused.value.code == code
    # A Beijing outlet (outside the auditor's province) and one that does not exist: the same answer.
    issued = await create_principal_with_token(sessions, tenant_path=GZ, role="auditor")
    async with sessions() as session:
        city_auditor = await authenticate(session, issued.token)
    refusals = []
    for outlet in ("gd-12333", "no-such-outlet"):
        with pytest.raises(OpsError) as refused:
            await what_can_do(sessions, city_auditor, outlet)
        refusals.append((refused.value.code, refused.value.message.replace(outlet, "X")))
    assert refusals[0] == refusals[1] == ("FORBIDDEN", "not allowed to read the audit of outlet X")
