"""The Casbin adapter over our tables, with stock pycasbin as the reader."""

import casbin
from sqlalchemy import select

from app.authz.adapter import TableAdapter
from app.authz.policy_state import POLICIES_DIR, BusinessPolicy
from app.domain.regions import dom_in
from app.store import policy
from app.store.db import make_sync_engine
from app.store.policy import ProjectedLine, line_rule
from app.store.tables import PolicyChange, PolicyLine

TH = "cn/440000/440100/440106"
END = "9999-12-31T23:59:59Z"


def oracle(engine) -> casbin.Enforcer:
    e = casbin.Enforcer(str(POLICIES_DIR / "business.conf"), TableAdapter(engine))
    e.add_function("dom_in", dom_in)
    e.add_named_domain_matching_func("g", dom_in)
    e.get_named_role_manager("g").matching_func = None
    e.load_policy()
    return e


async def test_casbin_reads_the_live_policy_through_the_adapter(sessions, db_url):
    lines = [
        ProjectedLine("g", ("outlet:a", "kind:grassroots_platform", TH), "outlet", "a"),
        ProjectedLine(
            "p",
            (
                "kind:grassroots_platform",
                "cn/440000",
                "info_inquiry",
                "allow",
                "2026-01-01T00:00:00Z",
                END,
                "1",
            ),
            "grant",
            "1",
        ),
        ProjectedLine(
            "p", ("outlet:a", TH, "info_inquiry", "deny", "2026-03-01T00:00:00Z", END, "2"), "block", "2"
        ),
        ProjectedLine("c", ("cn/440000", "hotline", "info_inquiry"), "ceiling", "3"),
    ]
    async with sessions() as session, session.begin():
        await policy.add_lines(session, lines, by="test")
    engine = make_sync_engine(db_url)
    e = oracle(engine)
    state = BusinessPolicy()
    async with sessions() as session:
        snapshot, _ = await policy.snapshot(session)
    state.load(snapshot)
    requests = [
        ("outlet:a", TH, dom, "info_inquiry", at)
        for dom in (TH, "cn/440000/440300", "cn/450000")
        for at in ("2026-02-01T00:00:00Z", "2026-04-01T00:00:00Z")
    ]
    assert [e.enforce(*r) for r in requests] == [state.enforcer.enforce(*r) for r in requests]
    # The Tianhe block covers Tianhe cards only; the province grant still serves Shenzhen cards.
    assert [e.enforce(*r) for r in requests] == [True, False, True, True, False, False]
    engine.dispose()


async def test_remove_policies_removes_exactly_the_listed_rules(db_url):
    engine = make_sync_engine(db_url)
    adapter = TableAdapter(engine)
    rules = [
        ("a", "d1", "s1", "allow", "x", "y", "1"),
        ("b", "d2", "s2", "allow", "x", "y", "2"),
        ("a", "d2", "s2", "allow", "x", "y", "3"),
        ("b", "d1", "s1", "allow", "x", "y", "4"),
    ]
    adapter.add_policies("p", "p", rules)
    # sqlalchemy-adapter would also delete ("a","d2",...) and ("b","d1",...): the cross product.
    assert adapter.remove_policies("p", "p", [rules[0], rules[1]])
    with engine.connect() as connection:
        left = sorted(line_rule(r) for r in connection.execute(select(PolicyLine)).all())
        log = connection.execute(select(PolicyChange.op).order_by(PolicyChange.id)).scalars().all()
    assert left == sorted([rules[2], rules[3]])
    assert log == ["add"] * 4 + ["remove"] * 2
    engine.dispose()
