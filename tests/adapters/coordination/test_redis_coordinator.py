"""What only the Redis coordinator can show: replicas racing, key layout and TTLs, outages.

The shared contract (test_coordinator_contract.py) already runs every port method against
Redis; these tests need several coordinators on one server, a dedicated server to stop and
restart, or a look at the raw keys.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from responder.adapters.coordination import redis_scripts
from responder.adapters.coordination.redis import RedisCoordinator
from responder.errors import CoordinationUnavailableError
from responder.models.rules import Budget
from tests.adapters.coordination.harnesses import RedisHarness
from tests.support.loopback import free_port
from tests.support.redis_service import RedisProcess

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


@pytest.fixture
async def replicas(redis_url: str, redis_prefix: str) -> AsyncIterator[list[RedisCoordinator]]:
    """Three coordinators with their own connection pools on one server and prefix."""
    harness = RedisHarness(redis_url, redis_prefix)
    opened = [await harness.open() for _ in range(3)]
    yield [c for c in opened if isinstance(c, RedisCoordinator)]
    await harness.aclose()


async def test_three_replicas_racing_get_exact_counts(replicas: list[RedisCoordinator]) -> None:
    def spread(n: int) -> list[RedisCoordinator]:
        return [replicas[i % 3] for i in range(n)]

    ttl = timedelta(seconds=30)
    one_key = await asyncio.gather(*(c.claim("dedup:hot", ttl) for c in spread(200)))
    assert one_key.count(True) == 1
    ten_keys = await asyncio.gather(
        *(c.claim(f"dedup:{i % 10}", ttl) for i, c in enumerate(spread(200)))
    )
    assert ten_keys.count(True) == 10
    storm = (Budget(max=7, per=HOUR), Budget(max=50, per=DAY))
    taken = await asyncio.gather(*(c.take_budget("storm", storm, T0) for c in spread(200)))
    assert taken.count(True) == 7
    for c in replicas:
        assert await c.budget_allows("storm", storm, T0) is False
    assert await replicas[0].take_budget("storm", storm, T0 + HOUR) is True  # hour slid by
    tokens = await asyncio.gather(*(c.acquire_lock("lock:step", ttl) for c in spread(200)))
    assert len([t for t in tokens if t is not None]) == 1


async def test_every_key_is_under_the_prefix_and_expires(redis_process: RedisProcess) -> None:
    prefix = "svc-a:"
    coordinator = await RedisCoordinator.open(redis_process.url, prefix=prefix, timeout_seconds=2)
    ttl = timedelta(minutes=5)
    await coordinator.claim("dedup:a", ttl)
    await coordinator.start_cooldown("cooldown:a", ttl)
    await coordinator.take_budget("budget:a", (Budget(max=3, per=HOUR), Budget(max=7, per=DAY)), T0)
    await coordinator.budget_allows("budget:b", (Budget(max=3, per=HOUR),), T0)  # writes nothing
    await coordinator.acquire_lock("lock:a", ttl)
    await coordinator.close()
    client = aioredis.Redis.from_url(redis_process.url, decode_responses=True)
    try:
        ttls = {name: await client.pttl(name) async for name in client.scan_iter(count=100)}
    finally:
        await client.aclose()
    hour_us, day_us = HOUR // timedelta(microseconds=1), DAY // timedelta(microseconds=1)
    assert set(ttls) == {
        "svc-a:claim:dedup:a",
        "svc-a:cooldown:cooldown:a",
        "svc-a:lock:lock:a",
        f"svc-a:budget:{{budget:a}}:{hour_us}",
        f"svc-a:budget:{{budget:a}}:{day_us}",
    }
    assert all(
        0 < left <= ttl // timedelta(milliseconds=1)
        for name, left in ttls.items()
        if "budget" not in name
    )
    margin = 60_000
    assert 3_600_000 < ttls[f"svc-a:budget:{{budget:a}}:{hour_us}"] <= 3_600_000 + margin
    assert 86_400_000 < ttls[f"svc-a:budget:{{budget:a}}:{day_us}"] <= 86_400_000 + margin


async def test_write_scripts_are_safe_to_send_twice(redis_url: str, redis_prefix: str) -> None:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        claim = client.register_script(redis_scripts.SET_IF_ABSENT)
        key = f"{redis_prefix}claim:x"
        assert await claim([key], ["token-1", 10_000]) == 1
        assert await claim([key], ["token-1", 10_000]) == 1  # our own retried write
        assert await claim([key], ["token-2", 10_000]) == 0
        budget = client.register_script(redis_scripts.BUDGET)
        window = f"{redis_prefix}budget:{{k}}:1000000"
        args: list[str | int] = ["1", 5_000_000, "run-1", 4_000_000, 2, 61_000]
        assert await budget([window], args) == 1
        assert await budget([window], args) == 1  # the retry of the same run
        assert await client.zcard(window) == 1  # ... is counted once
    finally:
        await client.aclose()


async def test_outage_fails_closed_promptly_and_the_same_object_recovers(
    redis_process: RedisProcess,
) -> None:
    timeout = 0.5
    coordinator = await RedisCoordinator.open(
        redis_process.url, prefix="outage:", timeout_seconds=timeout
    )
    hourly = (Budget(max=3, per=HOUR),)
    assert await coordinator.claim("dedup:before", timedelta(seconds=30)) is True
    redis_process.stop()
    for call in (
        lambda: coordinator.ping(),
        lambda: coordinator.claim("dedup:during", timedelta(seconds=30)),
        lambda: coordinator.take_budget("storm", hourly, T0),
        lambda: coordinator.acquire_lock("lock:a", timedelta(seconds=30)),
        lambda: coordinator.cooldown_remaining("cooldown:a"),
    ):
        started = time.monotonic()
        with pytest.raises(CoordinationUnavailableError) as caught:
            await call()
        assert time.monotonic() - started < 2 * timeout + 0.25 + 0.5
        assert f"127.0.0.1:{redis_process.port}" in str(caught.value)
        assert "check that Redis is running" in str(caught.value)
    redis_process.start()  # same port, empty (no persistence)
    await coordinator.ping()
    assert await coordinator.claim("dedup:after", timedelta(seconds=30)) is True
    assert await coordinator.take_budget("storm", hourly, T0) is True
    token = await coordinator.acquire_lock("lock:a", timedelta(seconds=30))
    assert token is not None
    assert await coordinator.release_lock("lock:a", token) is True
    redis_process.stop()  # and a restart nobody saw: the pooled connections are stale
    redis_process.start()
    assert await coordinator.claim("dedup:after-quiet", timedelta(seconds=30)) is True
    await coordinator.close()


async def test_a_silent_server_times_out_within_the_bound() -> None:
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(1024):
            pass
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    timeout = 0.3
    started = time.monotonic()
    with pytest.raises(CoordinationUnavailableError, match=f"127.0.0.1:{port}"):
        await RedisCoordinator.open(f"redis://127.0.0.1:{port}/0", timeout_seconds=timeout)
    assert time.monotonic() - started < 2 * timeout + 0.25 + 0.3
    server.close()
    await server.wait_closed()


async def test_open_refuses_a_redis_that_is_down_naming_it_but_never_the_password() -> None:
    port = free_port()  # nothing listens there
    url = f"redis://ops:s3cr%21t-pw@127.0.0.1:{port}/0"
    with pytest.raises(CoordinationUnavailableError) as caught:
        await RedisCoordinator.open(url, timeout_seconds=0.5)
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "s3cr" not in message
    with pytest.raises(ValueError, match="not usable") as bad:
        await RedisCoordinator.open("http://ops:s3cr%21t-pw@127.0.0.1:1/0", timeout_seconds=1)
    assert "s3cr" not in str(bad.value)
