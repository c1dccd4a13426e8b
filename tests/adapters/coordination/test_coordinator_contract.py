"""The Coordinator contract: every implementation of the `Coordinator` port passes these.

Claims, cooldowns and locks run on the coordinator's own clock, which the harness advances (a
real sleep for Redis), so TTLs here are short. Budgets run on the `now` argument. The Redis
cases need a real server (tests/support/redis_service.py finds or starts one); what only Redis can
show (replicas racing, key layout, outages) is in test_redis_coordinator.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from responder.adapters.coordination.memory import MemoryCoordinator
from responder.errors import CoordinationUnavailableError
from responder.models.rules import Budget
from responder.ports.coordination import Coordinator
from tests.adapters.coordination.harnesses import (
    COORDINATOR_IMPLEMENTATIONS,
    CoordinatorHarness,
    MemoryHarness,
    RedisHarness,
)

TTL = timedelta(milliseconds=200)
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HOURLY_AND_DAILY = (Budget(max=3, per=timedelta(hours=1)), Budget(max=7, per=timedelta(days=1)))


@pytest.fixture(params=COORDINATOR_IMPLEMENTATIONS)
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[CoordinatorHarness]:
    """One harness per implementation; it closes what it opened."""
    made: CoordinatorHarness
    if request.param == "memory":
        made = MemoryHarness()
    elif request.param == "redis":
        made = RedisHarness(
            request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        )
    else:
        raise AssertionError(f"no harness for {request.param}")
    yield made
    await made.aclose()
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not others, f"tasks left running: {others}"


@pytest.fixture
async def coordinator(harness: CoordinatorHarness) -> Coordinator:
    """A coordinator with nothing claimed, cooling down or counted."""
    return await harness.open()


# -- claims and cooldowns -------------------------------------------------------------------


async def test_claim_is_first_caller_only_until_it_expires(
    harness: CoordinatorHarness, coordinator: Coordinator
) -> None:
    assert await coordinator.claim("dedup:a", TTL) is True
    assert await coordinator.claim("dedup:a", TTL) is False
    assert await coordinator.claim("dedup:b", TTL) is True
    await harness.advance(TTL.total_seconds() / 2)
    assert await coordinator.claim("dedup:a", TTL) is False  # a refused claim does not renew
    await harness.advance(TTL.total_seconds() / 2 + 0.1)
    assert await coordinator.claim("dedup:a", TTL) is True
    assert await coordinator.claim("dedup:a", TTL) is False


async def test_exactly_one_of_many_concurrent_claims_wins(coordinator: Coordinator) -> None:
    results = await asyncio.gather(*(coordinator.claim("dedup:hot", TTL) for _ in range(100)))
    assert results.count(True) == 1


async def test_begin_cooldown_lets_exactly_one_of_concurrent_callers_start_it(
    harness: CoordinatorHarness, coordinator: Coordinator
) -> None:
    results = await asyncio.gather(
        *(coordinator.begin_cooldown("cooldown:storm", TTL) for _ in range(25))
    )
    assert sum(1 for left in results if left is None) == 1  # one winner, the rest see it
    assert all(left is None or timedelta(0) < left <= TTL for left in results)
    assert await coordinator.cooldown_remaining("cooldown:storm") is not None
    await harness.advance(TTL.total_seconds() + 0.1)
    assert await coordinator.begin_cooldown("cooldown:storm", TTL) is None  # over: again


async def test_cooldown_counts_down_and_expires(
    harness: CoordinatorHarness, coordinator: Coordinator
) -> None:
    assert await coordinator.cooldown_remaining("cooldown:a") is None
    await coordinator.start_cooldown("cooldown:a", TTL)
    remaining = await coordinator.cooldown_remaining("cooldown:a")
    assert remaining is not None
    assert TTL - timedelta(milliseconds=150) < remaining <= TTL
    assert await coordinator.cooldown_remaining("cooldown:b") is None
    await harness.advance(TTL.total_seconds() / 2)
    later = await coordinator.cooldown_remaining("cooldown:a")
    assert later is not None
    assert later < remaining
    await coordinator.start_cooldown("cooldown:a", TTL)  # restart: full length again
    restarted = await coordinator.cooldown_remaining("cooldown:a")
    assert restarted is not None
    assert restarted > later
    await harness.advance(TTL.total_seconds() + 0.1)
    assert await coordinator.cooldown_remaining("cooldown:a") is None


# -- budgets ----------------------------------------------------------------------------------


async def take_until_refused(
    coordinator: Coordinator, key: str, at: datetime, budgets: tuple[Budget, ...]
) -> int:
    """How many runs fit now, taking one per second from `at`."""
    taken = 0
    while await coordinator.take_budget(key, budgets, at + timedelta(seconds=taken)):
        taken += 1
        assert taken < 100, "budget never refused"
    return taken


async def test_budget_windows_slide_and_all_must_allow(coordinator: Coordinator) -> None:
    key, hour = "budget:rule-a/shop", timedelta(hours=1)
    assert await take_until_refused(coordinator, key, T0, HOURLY_AND_DAILY) == 3  # hourly cap
    assert await take_until_refused(coordinator, key, T0 + hour, HOURLY_AND_DAILY) == 3
    assert await take_until_refused(coordinator, key, T0 + 2 * hour, HOURLY_AND_DAILY) == 1
    assert await take_until_refused(coordinator, key, T0 + 5 * hour, HOURLY_AND_DAILY) == 0
    # 24h after the first run, the first runs leave the daily window one by one
    day = T0 + timedelta(days=1)
    assert (
        await coordinator.budget_allows(key, HOURLY_AND_DAILY, day - timedelta(seconds=1)) is False
    )
    assert await coordinator.take_budget(key, HOURLY_AND_DAILY, day) is True
    assert await coordinator.take_budget(key, HOURLY_AND_DAILY, day) is False
    assert await coordinator.take_budget(key, HOURLY_AND_DAILY, day + timedelta(seconds=1)) is True
    assert await coordinator.take_budget(key, HOURLY_AND_DAILY, day + timedelta(seconds=2)) is True
    assert await coordinator.take_budget(key, HOURLY_AND_DAILY, day + timedelta(seconds=3)) is False


async def test_a_run_leaves_the_window_exactly_one_window_later(coordinator: Coordinator) -> None:
    once = (Budget(max=1, per=timedelta(minutes=10)),)
    assert await coordinator.take_budget("k", once, T0) is True
    just_before = T0 + timedelta(minutes=10) - timedelta(microseconds=1)
    assert await coordinator.take_budget("k", once, just_before) is False
    assert await coordinator.take_budget("k", once, T0 + timedelta(minutes=10)) is True


async def test_a_refused_run_counts_against_no_window(coordinator: Coordinator) -> None:
    tight = (Budget(max=1, per=timedelta(minutes=1)), Budget(max=2, per=timedelta(hours=1)))
    assert await coordinator.take_budget("k", tight, T0) is True
    for second in range(1, 30):  # refused by the 1-minute window: must not use the hourly one
        assert await coordinator.take_budget("k", tight, T0 + timedelta(seconds=second)) is False
    assert await coordinator.take_budget("k", tight, T0 + timedelta(minutes=2)) is True


async def test_budget_allows_has_no_side_effect(coordinator: Coordinator) -> None:
    for _ in range(20):
        assert await coordinator.budget_allows("k", HOURLY_AND_DAILY, T0) is True
    assert await take_until_refused(coordinator, "k", T0, HOURLY_AND_DAILY) == 3
    assert (
        await coordinator.budget_allows("k", HOURLY_AND_DAILY, T0 + timedelta(minutes=5)) is False
    )


async def test_budgets_are_per_key_and_empty_budgets_always_allow(
    coordinator: Coordinator,
) -> None:
    assert await take_until_refused(coordinator, "a", T0, HOURLY_AND_DAILY) == 3
    assert await take_until_refused(coordinator, "b", T0, HOURLY_AND_DAILY) == 3
    for _ in range(5):
        assert await coordinator.take_budget("a", (), T0) is True
    assert await coordinator.budget_allows("a", (), T0) is True


async def test_concurrent_takes_never_exceed_the_budget(coordinator: Coordinator) -> None:
    five = (Budget(max=5, per=timedelta(hours=1)),)
    results = await asyncio.gather(*(coordinator.take_budget("k", five, T0) for _ in range(100)))
    assert results.count(True) == 5


# -- locks, ping, misuse, close ----------------------------------------------------------------


async def test_lock_is_exclusive_and_only_its_owner_releases_it(coordinator: Coordinator) -> None:
    token = await coordinator.acquire_lock("lock:a", TTL * 10)
    assert token is not None
    assert await coordinator.acquire_lock("lock:a", TTL * 10) is None
    assert await coordinator.acquire_lock("lock:b", TTL * 10) is not None
    assert await coordinator.release_lock("lock:a", "not-the-token") is False
    assert await coordinator.acquire_lock("lock:a", TTL * 10) is None  # still held
    assert await coordinator.release_lock("lock:a", token) is True
    assert await coordinator.release_lock("lock:a", token) is False  # already released
    again = await coordinator.acquire_lock("lock:a", TTL * 10)
    assert again is not None
    assert again != token


async def test_lock_expires_and_a_stale_token_cannot_release_the_next_holder(
    harness: CoordinatorHarness, coordinator: Coordinator
) -> None:
    first = await coordinator.acquire_lock("lock:a", TTL)
    assert first is not None
    await harness.advance(TTL.total_seconds() + 0.1)  # the holder died: the lock frees itself
    assert await coordinator.release_lock("lock:a", first) is False  # expired: nothing to free
    second = await coordinator.acquire_lock("lock:a", TTL * 10)
    assert second is not None
    assert await coordinator.release_lock("lock:a", first) is False  # someone else's now
    assert await coordinator.acquire_lock("lock:a", TTL) is None
    assert await coordinator.release_lock("lock:a", second) is True


async def test_exactly_one_of_many_concurrent_lock_acquires_wins(coordinator: Coordinator) -> None:
    tokens = await asyncio.gather(*(coordinator.acquire_lock("lock:hot", TTL) for _ in range(100)))
    assert len([t for t in tokens if t is not None]) == 1


async def test_claims_cooldowns_and_locks_do_not_collide(coordinator: Coordinator) -> None:
    assert await coordinator.claim("same", TTL * 10) is True
    assert await coordinator.cooldown_remaining("same") is None
    assert await coordinator.acquire_lock("same", TTL * 10) is not None
    await coordinator.start_cooldown("same", TTL * 10)
    assert await coordinator.claim("same", TTL * 10) is False
    assert await coordinator.take_budget("same", (Budget(max=1, per=timedelta(hours=1)),), T0)


async def test_ping_answers(coordinator: Coordinator) -> None:
    await coordinator.ping()


async def test_bad_ttls_and_naive_times_are_refused(coordinator: Coordinator) -> None:
    naive = datetime(2024, 5, 1, 12, 0)
    with pytest.raises(ValueError, match="ttl"):
        await coordinator.claim("k", timedelta(0))
    with pytest.raises(ValueError, match="ttl"):
        await coordinator.start_cooldown("k", timedelta(seconds=-1))
    with pytest.raises(ValueError, match="ttl"):
        await coordinator.acquire_lock("k", timedelta(0))
    with pytest.raises(ValueError, match="naive"):
        await coordinator.take_budget("k", HOURLY_AND_DAILY, naive)
    with pytest.raises(ValueError, match="naive"):
        await coordinator.budget_allows("k", HOURLY_AND_DAILY, naive)


CALLS: dict[str, Callable[[Coordinator], Awaitable[object]]] = {
    "claim": lambda c: c.claim("k", TTL),
    "cooldown_remaining": lambda c: c.cooldown_remaining("k"),
    "start_cooldown": lambda c: c.start_cooldown("k", TTL),
    "take_budget": lambda c: c.take_budget("k", HOURLY_AND_DAILY, T0),
    "budget_allows": lambda c: c.budget_allows("k", HOURLY_AND_DAILY, T0),
    "take_no_budget": lambda c: c.take_budget("k", (), T0),
    "acquire_lock": lambda c: c.acquire_lock("k", TTL),
    "release_lock": lambda c: c.release_lock("k", "token"),
    "ping": lambda c: c.ping(),
}


@pytest.mark.parametrize("call", CALLS)
async def test_calls_after_close_raise(coordinator: Coordinator, call: str) -> None:
    await coordinator.close()
    with pytest.raises(CoordinationUnavailableError):
        await CALLS[call](coordinator)


# -- in-process only ---------------------------------------------------------------------------


async def test_memory_coordinator_forgets_what_expired() -> None:
    clock = [0.0]
    coordinator = MemoryCoordinator(clock=lambda: clock[0])
    hourly = (Budget(max=3, per=timedelta(hours=1)),)
    for n in range(1000):
        await coordinator.claim(f"dedup:{n}", timedelta(seconds=10))
        await coordinator.start_cooldown(f"cooldown:{n}", timedelta(seconds=20))
        await coordinator.take_budget(f"budget:{n}", hourly, T0)
    assert coordinator.live_entries == 3000
    clock[0] = 30.0
    await coordinator.take_budget("budget:new", hourly, T0 + timedelta(hours=2))
    assert coordinator.live_entries == 1
    await coordinator.close()
