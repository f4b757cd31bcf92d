"""A moving-window count in the worker's memory for the `limits` library, without a timer thread.

`limits`' own MemoryStorage expires old entries from a `threading.Timer` it restarts every 10 ms
while any count is live: a new OS thread a hundred times a second, each start and each wake-up
taking the interpreter lock from the event loop. Under partner traffic that cost ~65 µs per call
(~10 % of a worker's throughput, bench/partner.py). This storage plugs into the library through its
storage interface (the moving-window strategy, limit parsing and the Redis path stay the library's)
and expires entries when a key is next counted, plus a sweep of idle keys at most once a period.

Not thread-safe, by design: one instance per event loop (see PartnerLimiter).
"""

from __future__ import annotations

import time
from collections import deque

from limits.storage import MovingWindowSupport, Storage

# How often idle keys are looked at: an idle key keeps at most its limit's worth of timestamps
# until then.
SWEEP_INTERVAL_S = 60.0


class _Window:
    __slots__ = ("expiry", "hits")

    def __init__(self, expiry: float) -> None:
        self.expiry = expiry
        self.hits: deque[float] = deque()  # times of the calls still inside the window, oldest first

    def trim(self, now: float) -> None:
        # A call exactly one period old still counts, as in the library's own memory storage.
        cutoff = now - self.expiry
        hits = self.hits
        while hits and hits[0] < cutoff:
            hits.popleft()


class LoopMemoryStorage(Storage, MovingWindowSupport):
    """Moving-window support only (the one strategy PartnerLimiter uses)."""

    STORAGE_SCHEME = None  # built directly, never looked up by URL

    def __init__(self) -> None:
        super().__init__()
        self._windows: dict[str, _Window] = {}
        self._next_sweep = time.time() + SWEEP_INTERVAL_S

    @property
    def base_exceptions(self) -> type[Exception]:
        return ValueError

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        now = time.time()
        if now >= self._next_sweep:
            self._sweep(now)
        window = self._windows.get(key)
        if window is None:  # the library's key names the limit too: one expiry per key
            window = self._windows[key] = _Window(expiry)
        window.trim(now)
        if len(window.hits) + amount > limit:
            return False
        window.hits.extend([now] * amount)
        return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """(time of the oldest call inside the window, calls inside it), as the library expects."""
        now = time.time()
        window = self._windows.get(key)
        if window is None:
            return now, 0
        window.trim(now)
        return (window.hits[0], len(window.hits)) if window.hits else (now, 0)

    def _sweep(self, now: float) -> None:
        for key, window in list(self._windows.items()):
            window.trim(now)
            if not window.hits:
                del self._windows[key]
        self._next_sweep = now + SWEEP_INTERVAL_S

    def clear(self, key: str) -> None:
        self._windows.pop(key, None)

    def reset(self) -> int:
        count = len(self._windows)
        self._windows.clear()
        return count

    def check(self) -> bool:
        return True

    # The counter interface of the fixed-window strategies, which PartnerLimiter does not use.
    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        raise NotImplementedError("LoopMemoryStorage counts moving windows only")

    def get(self, key: str) -> int:
        raise NotImplementedError("LoopMemoryStorage counts moving windows only")

    def get_expiry(self, key: str) -> float:
        raise NotImplementedError("LoopMemoryStorage counts moving windows only")
