"""Policy time: fixed-width UTC text, and the current second's text made once a second."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

from app.authz.projection import OPEN_END, policy_time, policy_time_now


def test_policy_time_is_utc_text_in_time_order():
    beijing = timezone(timedelta(hours=8))
    assert policy_time(datetime(2026, 3, 1, 8, 0, 5, tzinfo=beijing)) == "2026-03-01T00:00:05Z"
    assert policy_time(None) == OPEN_END
    earlier, later = datetime(2026, 1, 9, tzinfo=UTC), datetime(2026, 1, 10, tzinfo=UTC)
    assert policy_time(earlier) < policy_time(later) < OPEN_END


def test_the_current_second_follows_the_clock(monkeypatch):
    clock = [1_790_000_000.2]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    first = policy_time_now()
    assert first == policy_time(datetime.fromtimestamp(clock[0], UTC))
    clock[0] += 0.7  # the same second
    assert policy_time_now() == first
    clock[0] += 0.2  # the next one
    assert policy_time_now() == policy_time(datetime.fromtimestamp(clock[0], UTC)) > first
    clock[0] += 86_400
    assert policy_time_now() == policy_time(datetime.fromtimestamp(clock[0], UTC))
