"""The timer-free moving window, checked against the `limits` library's own memory storage."""

from __future__ import annotations

import random
import threading
import time

import pytest
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from app.ops.partner_keys.rate_window import SWEEP_INTERVAL_S, LoopMemoryStorage


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(time, "time", fake)  # both storages read the wall clock through time.time
    return fake


def drive_both(clock: Clock, steps: tuple[float, ...], *, compare_stats: bool) -> int:
    """Random calls of four keys under three limits through both storages; returns the refusals."""
    ours = MovingWindowRateLimiter(LoopMemoryStorage())
    oracle_storage = MemoryStorage()
    oracle = MovingWindowRateLimiter(oracle_storage)
    limits = [parse("3/second"), parse("5/2 seconds"), parse("2/minute")]
    rng = random.Random(5)
    refused = 0
    try:
        for step in range(3_000):
            clock.now += rng.choice(steps)
            key, limit = str(rng.randrange(4)), rng.choice(limits)
            expected = oracle.hit(limit, key)
            assert ours.hit(limit, key) == expected, step
            refused += not expected
            if compare_stats:
                assert ours.get_window_stats(limit, key) == oracle.get_window_stats(limit, key), step
    finally:
        oracle_storage.timer.cancel()
    return refused


def test_it_decides_every_call_as_the_librarys_memory_storage_does(clock):
    # Steps that are exact in binary: calls land exactly one period apart, on the window's edge.
    assert 300 < drive_both(clock, (0.0, 0.125, 0.25, 0.5, 1.0, 1.5), compare_stats=False) < 2_700


def test_it_reports_the_window_as_the_librarys_memory_storage_does(clock):
    # The library counts a call exactly one period old when deciding but not when reporting; with
    # irregular steps no call sits exactly on the edge.
    assert 300 < drive_both(clock, (0.0, 0.013, 0.107, 0.31, 0.73, 1.51), compare_stats=True) < 2_700


def test_it_starts_no_thread(clock, monkeypatch):
    def refuse(_thread):
        raise AssertionError("a thread was started")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    limiter = MovingWindowRateLimiter(LoopMemoryStorage())
    for _ in range(1_000):
        clock.now += 0.005
        limiter.hit(parse("100/second"), "k")
    assert limiter.get_window_stats(parse("100/second"), "k").remaining == 0


def test_idle_keys_are_swept_and_live_ones_kept(clock):
    storage = LoopMemoryStorage()
    limiter = MovingWindowRateLimiter(storage)
    for key in ("idle-1", "idle-2", "live"):
        limiter.hit(parse("10/second"), key)
    clock.now += SWEEP_INTERVAL_S + 1
    limiter.hit(parse("10/second"), "live")  # the first count after the interval sweeps
    assert set(storage._windows) == {parse("10/second").key_for("live")}
