"""The policy at a past time: lines added by then and not yet removed, and a subtree as one range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.store import policy
from app.store.policy import ProjectedLine
from app.store.policy_history import lines_at, values_at
from app.store.queries import in_subtree


def group(outlet: str, tenant: str) -> ProjectedLine:
    return ProjectedLine("g", (f"outlet:{outlet}", "kind:hrss_hall", tenant), "outlet", outlet)


async def test_lines_in_force_at_any_time(sessions):
    async with sessions() as session, session.begin():
        await policy.add_lines(session, [group("a", "cn/440000"), group("b", "cn/440000/440100")], by="p:one")
    first = datetime.now(UTC)
    async with sessions() as session, session.begin():
        await policy.remove_source_lines(session, source="outlet", source_ids=["a"], by="p:two")
        await policy.add_lines(session, [group("c", "cn/440000/440100/440106")], by="p:two")
    second = datetime.now(UTC)

    async def outlets(at):
        async with sessions() as session:
            return sorted(line.rule[0] for line in await lines_at(session, at, lambda t: [t.c.ptype == "g"]))

    assert await outlets(first - timedelta(seconds=5)) == []
    assert await outlets(first) == ["outlet:a", "outlet:b"]
    assert await outlets(second) == ["outlet:b", "outlet:c"]
    async with sessions() as session:
        ended = await lines_at(session, first, lambda t: [t.c.v0 == "outlet:a"])
    (a,) = ended
    assert (a.added_by, a.removed_by) == ("p:one", "p:two") and a.added_at < first <= a.removed_at


async def test_a_subtree_is_the_path_and_below_it_only(sessions):
    tenants = [
        "cn/440000",
        "cn/440000/440100",
        "cn/440000/440100/440106",
        "cn/440001",
        "cn/44000",
        "cn/4400001",
    ]
    async with sessions() as session, session.begin():
        await policy.add_lines(session, [group(str(n), t) for n, t in enumerate(tenants)], by="test")
    async with sessions() as session:
        rows = await values_at(
            session, datetime.now(UTC), ("v2",), lambda t: [t.c.ptype == "g", in_subtree(t.c.v2, "cn/440000")]
        )
    assert sorted(r[0] for r in rows) == tenants[:3]
