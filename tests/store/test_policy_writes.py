"""Writing policy lines and log entries in bulk: every value arrives as given, whichever way the
columns travel (one shared value, one joined text, or an array when a value holds a separator)."""

from __future__ import annotations

from sqlmodel import select

from app.store import policy
from app.store.policy import Change, ProjectedLine, changes_after, line_rule
from app.store.tables import PolicyLine


def _line(n: int, *, extra: str = "") -> ProjectedLine:
    rule = (f"outlet:o{n}{extra}", "cn/440000", "activation", "allow", "2026-01-01T00:00:00Z", "9999", str(n))
    return ProjectedLine("p", rule, "grant", str(n))


async def _stored(sessions) -> list[tuple[str, str, str, tuple[str, ...], str | None]]:
    async with sessions() as session:
        rows = (await session.exec(select(PolicyLine).order_by(PolicyLine.id))).all()
    return [(r.ptype, r.source, r.source_id, line_rule(r), r.added_by) for r in rows]


async def test_lines_of_every_shape_are_stored_as_given(sessions):
    lines = [_line(n) for n in range(300)]
    # Group lines are shorter (v3..v6 empty) and mixed in: the short columns hold NULLs.
    lines += [
        ProjectedLine("g", (f"outlet:o{n}", "kind:bank_branch", "cn/440000"), "outlet", f"o{n}")
        for n in range(5)
    ]
    # Values holding the joined column's separators must still arrive whole.
    lines += [_line(900, extra="\x1f"), _line(901, extra="\x1e"), _line(902, extra="\x1e\x1f")]
    async with sessions() as session, session.begin():
        await policy.add_lines(session, lines, by="p:一位管理员")
    stored = await _stored(sessions)
    assert stored == [(x.ptype, x.source, x.source_id, x.rule, "p:一位管理员") for x in lines]
    async with sessions() as session:
        logged = await changes_after(session, 0)
    assert [(c.op, c.ptype, c.rule) for c in logged] == [("add", x.ptype, x.rule) for x in lines]
    assert [c.id for c in logged] == sorted(c.id for c in logged)


async def test_one_line_and_lines_that_share_every_value(sessions):
    same = _line(7)
    async with sessions() as session, session.begin():
        await policy.add_lines(session, [same], by="p:one")
    async with sessions() as session, session.begin():  # every column shared: no array at all
        await policy.add_lines(session, [same, same], by="p:two")
    assert await _stored(sessions) == [
        ("p", "grant", "7", same.rule, "p:one"),
        ("p", "grant", "7", same.rule, "p:two"),
        ("p", "grant", "7", same.rule, "p:two"),
    ]


def test_what_a_worker_committed_is_kept_in_log_order_until_applied():
    """After-commit hooks of two transactions may run in either order; the tailer asks for what
    follows the last entry it applied."""
    kept = policy.CommittedHere()
    later = [Change(5, "add", "p", ("b",)), Change(6, "remove", "p", ("a",))]
    kept.add(later)
    kept.add([Change(2, "add", "p", ("a",))])
    assert [c.id for c in kept.after(0)] == [2]
    assert kept.after(2) == later and kept.after(5) == later  # 6 is still to apply
    assert kept.after(6) is None and kept.after(0) is None  # applied segments are forgotten
