"""The one check of every refusal test: nothing changed but the refusal's own denial event."""

from __future__ import annotations


def _rest(state: dict) -> dict:
    return {k: v for k, v in state.items() if k != "events"}


def assert_only_denial(before: dict, after: dict, who: str | None) -> None:
    """`before` and `after` are a test's snapshots of what a use case may touch, with the audit
    events (tuples holding the actor and the decision) under "events". Nothing may have changed
    but, for a known caller `who` (as in PEOPLE: gz_admin), exactly one denial event of theirs
    (none for an anonymous caller, who never reaches a use case)."""
    assert _rest(after) == _rest(before), who
    assert after["events"][: len(before["events"])] == before["events"], who
    added = after["events"][len(before["events"]) :]
    if who is None:
        assert added == []
    else:
        assert len(added) == 1, added
        assert "deny" in added[0] and f"principal:{who.replace('_', '.')}" in added[0], added


def assert_nothing_written(before: dict, after: dict) -> None:
    """A request refused before any use case ran (it did not parse or its variables did not
    coerce): not even a denial event, since no caller was established."""
    assert after == before
