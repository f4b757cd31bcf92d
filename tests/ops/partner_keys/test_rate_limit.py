"""Partner rate limits: a moving window per key, in memory per worker or shared through Redis.

The Redis tests use the server on 127.0.0.1:6379; if it cannot be reached they fail, not skip.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from app.ops.auth import PartnerCaller
from app.ops.errors import OpsError
from app.ops.partner_keys.rate_limit import PartnerLimiter, parse_limit

REDIS_URL = "redis://127.0.0.1:6379"
DEFAULT = "5/second"


def caller(key_id: int, rate_limit: str | None = None) -> PartnerCaller:
    return PartnerCaller(key_id, "gz-th-pharm-dasenlin", "designated_pharmacy", "cn/440000", None, rate_limit)


async def passes(limiter: PartnerLimiter, key_id: int, limit: str) -> bool:
    try:
        await limiter.check(key_id, parse_limit(limit))
    except OpsError as refused:
        assert refused.code == "RATE_LIMITED"
        return False
    return True


@pytest.fixture
async def redis_namespace():
    """A namespace of this test's own in the local Redis, removed afterwards."""
    client = aioredis.from_url(REDIS_URL)
    await client.ping()  # an unreachable server fails the test here
    namespace = f"ssc-test:{uuid.uuid4().hex}"
    try:
        yield namespace
    finally:
        keys = [k async for k in client.scan_iter(match=f"{namespace}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def test_limits_are_parsed_strictly():
    assert parse_limit("50/second").amount == 50
    assert parse_limit("10 per 1 minute").get_expiry() == 60
    for bad in ("", "fast", "0/second", "5/second;100/minute", "5/fortnight"):
        with pytest.raises(OpsError) as refused:
            parse_limit(bad)
        assert refused.value.code == "BAD_INPUT" and refused.value.extensions["field"] == "rateLimit"


async def test_memory_window_refuses_past_the_limit_and_frees_up_after_it():
    limiter = PartnerLimiter("memory://", DEFAULT)
    assert [await passes(limiter, 1, "3/second") for _ in range(4)] == [True, True, True, False]
    assert await passes(limiter, 2, "3/second")  # another key, another count
    with pytest.raises(OpsError) as refused:
        await limiter.check(1, parse_limit("3/second"))
    assert refused.value.extensions == {"retryAfter": 1}
    await asyncio.sleep(1.05)
    assert await passes(limiter, 1, "3/second")


async def test_the_moving_window_has_no_boundary_burst():
    """A fixed window lets 2N through across a boundary; the moving window never more than N in any
    interval of one period."""
    limiter = PartnerLimiter("memory://", DEFAULT)
    loop = asyncio.get_running_loop()
    allowed = []
    for _ in range(25):
        if await passes(limiter, 7, "5/second"):
            allowed.append(loop.time())
        await asyncio.sleep(0.1)
    assert len(allowed) >= 10
    assert all(later - earlier >= 0.99 for earlier, later in zip(allowed, allowed[5:], strict=False))


async def test_a_call_counts_against_the_keys_own_limit_or_the_default():
    limiter = PartnerLimiter("memory://", DEFAULT)
    for _ in range(parse_limit(DEFAULT).amount):
        await limiter.check_call(caller(101))
    with pytest.raises(OpsError) as refused:
        await limiter.check_call(caller(101))
    assert refused.value.code == "RATE_LIMITED"
    await limiter.check_call(caller(102, "1/minute"))
    with pytest.raises(OpsError) as refused:
        await limiter.check_call(caller(102, "1/minute"))
    assert 1 <= refused.value.extensions["retryAfter"] <= 60


def test_only_memory_and_redis_storages_are_accepted():
    with pytest.raises(ValueError, match="memcached://"):
        PartnerLimiter("memcached://127.0.0.1:11211", DEFAULT)


async def test_redis_shares_one_count_among_workers(redis_namespace):
    """Two limiters stand for two workers: together they let the limit through once, not twice."""
    workers = [PartnerLimiter(REDIS_URL, DEFAULT, namespace=redis_namespace) for _ in range(2)]
    results = [await passes(workers[i % 2], 5, "4/minute") for i in range(8)]
    assert results == [True] * 4 + [False] * 4
    client = aioredis.from_url(REDIS_URL)
    try:
        stored = [k async for k in client.scan_iter(match=f"{redis_namespace}*")]
    finally:
        await client.aclose()
    assert stored, "the count must live in Redis, not in the workers"
    with pytest.raises(OpsError) as refused:
        await workers[0].check(5, parse_limit("4/minute"))
    assert 1 <= refused.value.extensions["retryAfter"] <= 60


async def test_an_unreachable_redis_falls_back_to_counting_in_the_worker(caplog):
    limiter = PartnerLimiter("redis://127.0.0.1:1", DEFAULT, namespace=f"ssc-test:{uuid.uuid4().hex}")
    assert [await passes(limiter, 9, "2/minute") for _ in range(3)] == [True, True, False]
    assert "counting in this worker only" in caplog.text


async def test_closing_the_limiters_closes_their_redis_connections(redis_namespace):
    """A stopping worker leaves no connection open on the shared Redis."""
    limiter = PartnerLimiter(REDIS_URL, DEFAULT, namespace=redis_namespace)
    await passes(limiter, 11, "4/minute")
    client = aioredis.from_url(REDIS_URL)
    try:

        async def ours() -> int:
            return sum(c.get("name") == redis_namespace for c in await client.client_list())

        assert await ours() >= 1
        await limiter.close()
        assert await ours() == 0
    finally:
        await client.aclose()
