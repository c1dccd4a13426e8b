"""The Redis Coordinator: dedup claims, cooldowns, run budgets and step locks for many replicas.

Keys (all under `prefix`, default `responder:`; every one expires):

    {prefix}claim:{key}                 claim token, PX = the claim's ttl
    {prefix}cooldown:{key}              "1", PX = the cooldown; PTTL is the time left
    {prefix}lock:{key}                  owner token, PX = the lock's ttl (never without)
    {prefix}budget:{{key}}:{window_us}  sorted set of counted runs, PX = window + 1 min

The kinds are separate namespaces, as in the in-process coordinator (a claim and a cooldown on
the same key do not collide). The braces make every window of one budget key hash to one
cluster slot, since one script touches them all.

Budgets slide, exactly like the in-process coordinator: a run counted at `t` uses a slot of a
`per` window while `now - per < t`, with `t` and `now` the `now` arguments (so callers' clocks,
not Redis's, place runs; scores are integer microseconds). `take_budget` is one Lua script:
it trims every window, checks every window, and only if all admit the run adds it to all and
refreshes their expiry, so replicas racing on one hot key (the storm brake) never overshoot.
`budget_allows` runs the same check without writing anything.

Failure: `open` checks that Redis answers; after that, every Redis error or timeout becomes
CoordinationUnavailableError naming host:port (never the password) and what to check, so the
engine fails closed. A call gives up within `2 * timeout_seconds + 0.25`
seconds: socket and connect timeouts are `timeout_seconds`, a broken connection is retried once
after a short backoff, and an overall deadline caps the rest. Nothing is remembered across an
outage: once Redis answers again the same object works again (the pool reconnects and the
scripts are reloaded on NOSCRIPT).
"""

from __future__ import annotations

import asyncio
import math
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from responder.adapters.connecting.redis import describe, scrub
from responder.adapters.coordination import redis_scripts
from responder.errors import CoordinationUnavailableError
from responder.models.rules import Budget

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_BUDGET_TTL_MARGIN_MS = 60_000  # keep a window's runs a minute past the window (clock skew)
_HEALTH_CHECK_SECONDS = 10  # PING a pooled connection idle for longer before reusing it


class RedisCoordinator:
    """`Coordinator` on one Redis; build it with `await RedisCoordinator.open(url, ...)`."""

    def __init__(self, client: Redis, *, prefix: str, url: str, deadline: float) -> None:
        self._redis = client
        self._prefix = prefix
        self._url = url  # for messages: described and scrubbed, never shown as is
        self._where = describe(url)
        self._deadline = deadline
        self._set_if_absent = client.register_script(redis_scripts.SET_IF_ABSENT)
        self._compare_and_delete = client.register_script(redis_scripts.COMPARE_AND_DELETE)
        self._budget = client.register_script(redis_scripts.BUDGET)
        self._closed = False

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        prefix: str = "responder:",
        timeout_seconds: float,
        max_connections: int = 32,
        require: bool = True,
    ) -> RedisCoordinator:
        """A coordinator for the Redis at `url` (`redis://`, `rediss://` or `unix://`).

        Checks that Redis answers now (PING), so a daemon started without its Redis exits
        clearly: CoordinationUnavailableError naming host:port. ValueError for a bad URL or
        prefix. At most `max_connections` connections; a call waits up to `timeout_seconds`
        for a free one. With `require=False` an unanswered PING is not an error: the daemon
        then starts fail-closed (no containment) and uses Redis as soon as it answers.
        """
        if not prefix:
            raise ValueError("the Redis key prefix must not be empty (e.g. 'responder:')")
        if timeout_seconds <= 0 or max_connections < 1:
            raise ValueError("timeout_seconds must be > 0 and max_connections >= 1")
        try:
            pool = BlockingConnectionPool.from_url(
                url,
                max_connections=max_connections,
                timeout=timeout_seconds,
                socket_timeout=timeout_seconds,
                socket_connect_timeout=timeout_seconds,
                health_check_interval=_HEALTH_CHECK_SECONDS,
                retry=Retry(ExponentialBackoff(cap=0.1, base=0.05), retries=1),
                decode_responses=True,
            )
        except ValueError as exc:
            detail = scrub(str(exc), url)
            raise ValueError(f"the Redis URL for {describe(url)} is not usable: {detail}") from None
        deadline = 2 * timeout_seconds + 0.25
        client = Redis(connection_pool=pool)
        coordinator = cls(client, prefix=prefix, url=url, deadline=deadline)
        try:
            await coordinator.ping()
        except CoordinationUnavailableError:
            if not require:
                return coordinator
            await coordinator.close()
            raise
        return coordinator

    async def claim(self, key: str, ttl: timedelta) -> bool:
        """Claim `key` for `ttl`; True only for the first caller while the claim lives."""
        return await self._take("claim", key, ttl) is not None

    async def cooldown_remaining(self, key: str) -> timedelta | None:
        """Time left on the cooldown of `key`, or None when not cooling down."""
        name = self._key("cooldown", key)
        left = int(await self._call("a cooldown check", lambda: self._redis.pttl(name)))
        return timedelta(milliseconds=left) if left > 0 else None  # -2 gone, -1 cannot be

    async def start_cooldown(self, key: str, ttl: timedelta) -> None:
        """Start (or restart) the cooldown of `key` for `ttl` from now."""
        name, ttl_ms = self._key("cooldown", key), _milliseconds(ttl)
        await self._call("a cooldown start", lambda: self._redis.set(name, "1", px=ttl_ms))

    async def begin_cooldown(self, key: str, ttl: timedelta) -> timedelta | None:
        """SET NX PX: start the cooldown of `key` unless one is running (then: the time left)."""
        name, ttl_ms = self._key("cooldown", key), _milliseconds(ttl)
        started = await self._call(
            "a cooldown start", lambda: self._redis.set(name, "1", px=ttl_ms, nx=True)
        )
        if started:
            return None
        left = int(await self._call("a cooldown check", lambda: self._redis.pttl(name)))
        return timedelta(milliseconds=max(left, 1))  # expired in between: still a loser

    async def take_budget(self, key: str, budgets: Sequence[Budget], now: datetime) -> bool:
        """If every window of `key` has room at `now`, count one run in each; else count none."""
        return await self._run_budget(key, budgets, now, take=True)

    async def budget_allows(self, key: str, budgets: Sequence[Budget], now: datetime) -> bool:
        """Whether `take_budget(key, budgets, now)` would succeed (writes nothing)."""
        return await self._run_budget(key, budgets, now, take=False)

    async def acquire_lock(self, key: str, ttl: timedelta) -> str | None:
        """Take the lock `key` for `ttl` (it always expires); the owner token, or None if held."""
        return await self._take("lock", key, ttl)

    async def release_lock(self, key: str, token: str) -> bool:
        """Release the lock only if `token` still owns it (compare and delete in Lua)."""
        keys, args = [self._key("lock", key)], [token]
        released = await self._call("a lock release", lambda: self._compare_and_delete(keys, args))
        return int(released) == 1

    async def ping(self) -> None:
        """Raise CoordinationUnavailableError unless Redis answers PING now."""
        await self._call("PING", lambda: self._redis.ping())

    async def close(self) -> None:
        """Close the connections; later calls raise CoordinationUnavailableError."""
        if not self._closed:
            self._closed = True
            await self._redis.aclose(close_connection_pool=True)

    async def _run_budget(
        self, key: str, budgets: Sequence[Budget], now: datetime, *, take: bool
    ) -> bool:
        now_us = _microseconds(now)
        tightest: dict[int, int] = {}  # window length (us) -> the smallest max among budgets
        for budget in budgets:
            per_us = budget.per // _MICROSECOND
            tightest[per_us] = min(budget.max, tightest.get(per_us, budget.max))
        if not tightest:
            self._check_open()
            return True
        keys: list[str] = []
        args: list[str | int] = ["1" if take else "0", now_us, secrets.token_hex(16)]
        for per_us, most in sorted(tightest.items()):
            keys.append(f"{self._prefix}budget:{{{key}}}:{per_us}")
            args += [now_us - per_us, most, math.ceil(per_us / 1000) + _BUDGET_TTL_MARGIN_MS]
        what = "a budget take" if take else "a budget check"
        return int(await self._call(what, lambda: self._budget(keys, args))) == 1

    async def _take(self, kind: str, key: str, ttl: timedelta) -> str | None:
        """SET NX PX with a fresh token (retry-safe, in Lua); the token, or None if held."""
        token = secrets.token_hex(16)
        args: list[str | int] = [token, _milliseconds(ttl)]
        keys = [self._key(kind, key)]
        taken = await self._call(f"a {kind}", lambda: self._set_if_absent(keys, args))
        return token if int(taken) == 1 else None

    def _key(self, kind: str, key: str) -> str:
        return f"{self._prefix}{kind}:{key}"

    def _check_open(self) -> None:
        if self._closed:
            raise CoordinationUnavailableError(
                f"the Redis coordinator for {self._where} is closed (shutting down?); "
                "retry after restart"
            )

    async def _call(self, what: str, command: Callable[[], Any]) -> Any:
        """Run one command under the overall deadline, translating every failure."""
        self._check_open()
        try:
            async with asyncio.timeout(self._deadline):
                return await command()
        except (RedisError, OSError, TimeoutError) as exc:
            detail = scrub(str(exc) or "no answer in time", self._url)
            raise CoordinationUnavailableError(
                f"Redis at {self._where} failed {what} ({type(exc).__name__}: {detail}); "
                "check that Redis is running and reachable from here (RESPONDER_REDIS_URL, "
                "network policy, TLS, password, maxmemory); containment waits until it answers",
                delay=1.0,
            ) from exc


def _milliseconds(ttl: timedelta) -> int:
    if ttl <= timedelta(0):
        raise ValueError(f"ttl must be positive, got {ttl}")
    return max(1, math.ceil(ttl / timedelta(milliseconds=1)))


def _microseconds(now: datetime) -> int:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"naive datetime {now!r}: pass a timezone-aware (UTC) time")
    return (now - _EPOCH) // _MICROSECOND
