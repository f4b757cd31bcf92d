"""Policy times: fixed-width text whose string order is time order, for every time the code writes.

The security review (issue 11, item 4) had `validUntil: "0500-01-01T00:00:00Z"` written as
`500-01-01T00:00:00Z`, which sorts after "2026-…": a grant every reviewer saw as long expired was
enforced. And a window from 00:00:00.5 was in force at 00:00:00.2 (fractions were cut).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.authz.projection import OPEN_END, policy_time, policy_time_now, window_end, window_start

# Every instant whose UTC year has four digits, with any offset and any fraction of a second.
moments = st.datetimes(
    min_value=datetime(1000, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.builds(
        timezone, st.timedeltas(min_value=timedelta(hours=-14), max_value=timedelta(hours=14))
    ),
)


@given(moments, moments)
def test_string_order_is_time_order(a, b):
    ta, tb = policy_time(a), policy_time(b)
    assert len(ta) == len(tb) == len(OPEN_END) == 20
    second_a, second_b = (m.astimezone(UTC).replace(microsecond=0) for m in (a, b))
    assert (ta < tb) == (second_a < second_b) and (ta == tb) == (second_a == second_b)
    assert ta <= OPEN_END


@given(moments)
def test_a_window_is_rounded_inward(moment):
    start, end = window_start(moment), window_end(moment)
    assert start >= moment >= end and start - end <= timedelta(seconds=1)
    assert start.microsecond == end.microsecond == 0
    # The window's text never admits an instant before it starts or at/after it ends.
    assert policy_time(start) >= policy_time(moment) >= policy_time(end)


def test_years_below_1000_are_zero_padded_or_refused():
    assert policy_time(datetime(1000, 1, 1, tzinfo=UTC)) == "1000-01-01T00:00:00Z"
    with pytest.raises(ValueError):
        policy_time(datetime(500, 1, 1, tzinfo=UTC))


def test_the_current_second_is_written_the_same_way():
    before = int(time.time())
    now = policy_time_now()
    after = int(time.time())
    assert now in {policy_time(datetime.fromtimestamp(t, UTC)) for t in range(before, after + 1)}
