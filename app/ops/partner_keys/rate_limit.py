"""Per-key rate limits on partner calls, counted by the `limits` library.

Strategy: moving window. At most N calls are let through in *any* interval of the period; a fixed
window would let 2N through across a window boundary. It costs one timestamp per call still inside
the window (at most N per key) and, on Redis, one Lua script round trip per call.

Every call also counts against a per-second burst limit, the platform's cap per second (setting
`partner_rate_limit_max`), when the key's own limit has a longer period: `1000000/day` averages
under the cap but would let a key spend its whole day in one burst at the server's full speed
(the security review sent 4,000 calls in one go). A key whose limit is per second needs no second
count: its limit is already at or below the cap.

Storage (setting `rate_limit_storage`): `memory://` counts in each worker process, so with W workers
a key may make up to W×N calls; `redis://host:port[/db]` keeps one count that every worker shares.
If Redis fails, the worker falls back to its own memory count (logged) rather than refusing every
partner call: the limit protects capacity, it is not an authorization.

The app creates one limiter per worker (app/web.py) and closes it at shutdown. Its Redis
connections and its memory count belong to the event loop that first uses them: one loop per worker.
"""

from __future__ import annotations

import logging
import math
import time
from functools import lru_cache

from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.strategies import MovingWindowRateLimiter as SyncMovingWindowRateLimiter
from redis.asyncio import ConnectionPool

from app import metrics
from app.ops.auth import PartnerCaller
from app.ops.errors import OpsError
from app.ops.partner_keys.rate_window import LoopMemoryStorage

log = logging.getLogger("ssc.rate_limit")

NAMESPACE = "ssc:partner-rate"
# Redis answers in well under a millisecond on a LAN; a slow or unreachable one must not hold calls up.
REDIS_TIMEOUT_S = 0.25


@lru_cache(maxsize=256)
def parse_limit(text: str) -> RateLimitItem:
    """One limit such as `50/second`, `3000/minute` or `10 per 1 second`; BAD_INPUT otherwise."""
    try:
        items = parse_many(text)
    except ValueError:
        items = []
    if len(items) != 1 or items[0].amount < 1:
        raise OpsError(
            "BAD_INPUT",
            "a rate limit is one '<calls>/<second|minute|hour|day>', e.g. 50/second",
            field="rateLimit",
        )
    return items[0]


def _redis_pool(url: str, namespace: str) -> ConnectionPool | None:
    """The worker's own connection pool to a shared Redis (so it can close it), or None for memory.
    Its connections carry the namespace as client name, so operators can tell them apart."""
    if url.startswith(("redis://", "rediss://")):
        return ConnectionPool.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
            client_name=namespace,
        )
    if url == "memory://":
        return None
    raise ValueError(f"rate_limit_storage must be memory:// or a redis:// URL, not {url.split('://')[0]}://")


class PartnerLimiter:
    """Counts calls per partner key in one storage, falling back to memory if that storage fails.

    Memory is counted with the library's synchronous API, right in the event loop, in a storage of
    our own (app/ops/partner_keys/rate_window.py): the library's memory storages expire entries from a timer
    thread or a task that cost more than the rest of a partner call's checks together.
    """

    def __init__(
        self, storage_url: str, default_limit: str, cap: str = "1000/second", namespace: str = NAMESPACE
    ) -> None:
        self.default_limit = default_limit
        self.burst = per_second(parse_limit(cap))
        self.pool = _redis_pool(storage_url, namespace)
        self.shared = None
        if self.pool is not None:
            storage = RedisStorage(
                f"async+{storage_url}",
                implementation="redispy",
                key_prefix=namespace,
                wrap_exceptions=True,
                connection_pool=self.pool,
            )
            self.shared = MovingWindowRateLimiter(storage)
        self.memory = SyncMovingWindowRateLimiter(LoopMemoryStorage())

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.aclose()

    async def check_call(self, caller: PartnerCaller) -> None:
        """Count a partner call against its key's limit (or the default) and, when that limit's
        period is longer than a second, against the burst limit; RATE_LIMITED past either."""
        limit = parse_limit(caller.rate_limit or self.default_limit)
        if limit.get_expiry() > 1:
            await self.check(caller.key_id, self.burst, scope="burst")
        await self.check(caller.key_id, limit)

    async def check(self, key_id: int, limit: RateLimitItem, scope: str = "key") -> None:
        """Count one call of the key; RATE_LIMITED (with retryAfter in seconds) past its limit."""
        key = str(key_id) if scope == "key" else f"{scope}:{key_id}"
        if self.shared is not None:
            try:
                allowed = await self.shared.hit(limit, key)
            except StorageError:
                log.warning("rate-limit storage failed; counting in this worker only", exc_info=True)
            else:
                if allowed:
                    return
                try:
                    reset = (await self.shared.get_window_stats(limit, key)).reset_time
                except StorageError:
                    reset = time.time() + limit.get_expiry()
                metrics.RATE_LIMITED.labels(scope).inc()
                raise _limited(limit, reset)
        if self.memory.hit(limit, key):
            return
        metrics.RATE_LIMITED.labels(scope).inc()
        raise _limited(limit, self.memory.get_window_stats(limit, key).reset_time)


@lru_cache(maxsize=16)
def per_second(cap: RateLimitItem) -> RateLimitItem:
    """The cap as calls per second (60000/minute -> 1000/second), at least one."""
    return parse_limit(f"{max(1, cap.amount // cap.get_expiry())}/second")


def _limited(limit: RateLimitItem, reset: float) -> OpsError:
    retry_after = max(1, math.ceil(reset - time.time()))
    return OpsError(
        "RATE_LIMITED",
        f"this key's limit ({limit}) is reached; retry in {retry_after} s",
        retryAfter=retry_after,
    )
