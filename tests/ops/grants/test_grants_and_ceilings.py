"""Grant and ceiling use cases against a real database, with decisions from the loaded policy."""

from datetime import UTC, datetime

import pytest
from sqlmodel import func, select

from app.authz.decision import CardFacts, OutletFacts, decide
from app.authz.policy_state import BusinessPolicy
from app.domain.card import CardState
from app.domain.reasons import Reason
from app.ops.errors import OpsError
from app.ops.grants.ceilings import set_ceiling
from app.ops.grants.changes import GrantRequest, change_state, grant_service
from app.ops.tenants.apply import apply_tenant_files
from app.store import policy
from app.store.tables import AuditEvent, Grant

JAN = datetime(2026, 1, 1, tzinfo=UTC)
NOW = "2026-06-01T00:00:00Z"
TH = "cn/440000/440100/440106"
WUSHAN = OutletFacts("gz-th-wushan", "grassroots_platform", TH)
CARD = CardFacts(TH, "105", CardState("normal", "enabled", "set"))


@pytest.fixture
async def tree(sessions, tenants_dir):
    await apply_tenant_files(sessions, tenants_dir)
    return sessions


async def _grant(sessions, **kw) -> Grant:
    req = GrantRequest(
        **{
            "tenant": "cn/440000/440100",
            "service": "password_change",
            "valid_from": JAN,
            "document_ref": "穗人社函〔2026〕1号",
            "outlet_id": "gz-th-wushan",
            **kw,
        }
    )
    async with sessions() as session, session.begin():
        return await grant_service(session, req, actor="test")


async def _decide(sessions, outlet=WUSHAN, service="password_change"):
    state = BusinessPolicy()
    async with sessions() as session:
        lines, _ = await policy.snapshot(session)
    state.load(lines)
    return decide(state, outlet, CARD, service, NOW)


async def _counts(sessions):
    async with sessions() as session:
        grants = (await session.exec(select(func.count()).select_from(Grant))).one()
        events = (await session.exec(select(func.count()).select_from(AuditEvent))).one()
    return grants, events


async def test_grant_is_enforced_and_revocation_removes_it(tree):
    grant = await _grant(tree)
    decision = await _decide(tree)
    assert decision.allowed and decision.grant_ids == (str(grant.id),)
    async with tree() as session, session.begin():
        await change_state(session, grant.id, "revoked", actor="test", why="document withdrawn")
    assert (await _decide(tree)).reason == Reason.NO_GRANT


async def test_suspend_and_resume(tree):
    grant = await _grant(tree)
    async with tree() as session, session.begin():
        await change_state(session, grant.id, "suspended", actor="test", why="inspection")
    assert (await _decide(tree)).reason == Reason.SUSPENDED
    async with tree() as session, session.begin():
        await change_state(session, grant.id, "active", actor="test", why="inspection passed")
    assert (await _decide(tree)).allowed


@pytest.mark.parametrize(
    ("kw", "code", "field"),
    [
        ({"tenant": "cn/440000/440300"}, "BAD_INPUT", "outletId"),  # Wushan is in Guangzhou, not Shenzhen
        ({"service": "financial_activation"}, "BAD_INPUT", "service"),
        ({"valid_until": datetime(2025, 1, 1, tzinfo=UTC)}, "BAD_INPUT", "validUntil"),
        ({"document_ref": "  "}, "BAD_INPUT", "documentRef"),
        ({"outlet_id": None}, "BAD_INPUT", "outlet"),
        ({"outlet_id": "gz-th-pharm-dasenlin", "service": "info_inquiry"}, "CEILING_EXCEEDED", None),
    ],
)
async def test_refused_grants_write_nothing(tree, kw, code, field):
    before = await _counts(tree)
    with pytest.raises(OpsError) as refused:
        await _grant(tree, **kw)
    assert refused.value.code == code
    assert refused.value.extensions.get("field") == field
    assert await _counts(tree) == before


async def test_ceiling_names_the_tenant_that_set_it(tree):
    async with tree() as session, session.begin():
        await set_ceiling(session, "cn/440000", "grassroots_platform", ["info_inquiry"], actor="test")
    with pytest.raises(OpsError) as refused:
        await _grant(tree)
    assert refused.value.code == "CEILING_EXCEEDED"
    assert refused.value.extensions["ceilingTenant"] == "cn/440000"
    await _grant(tree, tenant="cn/440000")  # the province itself is not bound by its own ceiling


async def test_shrinking_a_ceiling_suspends_the_grants_below_it(tree):
    city = await _grant(tree)
    province = await _grant(tree, tenant="cn/440000", service="password_reset")
    kind = await _grant(tree, outlet_id=None, outlet_kind="grassroots_platform", service="info_inquiry")
    async with tree() as session, session.begin():
        result = await set_ceiling(
            session, "cn/440000", "grassroots_platform", ["info_inquiry"], actor="test"
        )
    assert [g.id for g in result.suspended] == [city.id]
    async with tree() as session:
        states = {g.id: (g.state, g.state_reason) for g in (await session.exec(select(Grant))).all()}
    assert states[city.id][0] == "suspended" and "cn/440000" in states[city.id][1]
    assert states[province.id][0] == states[kind.id][0] == "active"
    assert (await _decide(tree)).reason == Reason.ABOVE_CEILING
    assert (await _decide(tree, service="password_reset")).allowed
    assert (await _decide(tree, service="info_inquiry")).allowed


async def test_ceiling_narrows_statutory_first_use(tree):
    hospital = OutletFacts("gz-th-hosp-tianhe", "designated_hospital", TH)
    new_card = CardFacts(TH, "105", CardState("normal", "not_enabled", "default"))
    state = BusinessPolicy()
    async with tree() as session:
        state.load((await policy.snapshot(session))[0])
    assert decide(state, hospital, new_card, "activation", NOW).allowed
    async with tree() as session, session.begin():
        await set_ceiling(session, TH, "designated_hospital", ["info_inquiry"], actor="test")
    state = BusinessPolicy()
    async with tree() as session:
        state.load((await policy.snapshot(session))[0])
    assert decide(state, hospital, new_card, "activation", NOW).reason == Reason.ABOVE_CEILING
