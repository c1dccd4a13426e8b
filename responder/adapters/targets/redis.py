"""The RedisApi port: read-only INFO and SLOWLOG against monitored Redis servers, by name.

Targets come from RESPONDER_REDIS_TARGETS, a JSON object `{"cache": "redis://..."}`
(`parse_targets`). These are the servers responder *watches*, never its coordinator.

Every call opens one client with socket and connect timeouts of `timeout_seconds`, no retry,
an overall deadline of `2 * timeout_seconds + 0.25` s, and closes it afterwards: a diagnostic
never holds connections against a server that may be rejecting clients (`maxclients`).

Values: INFO fields as redis-py parses them (ints, floats, strings, nested dicts such as
`slave0` or `db0`); SLOWLOG entries as `{id, start_time, duration_us, command, client_address,
client_name}` with the command cut at 200 characters (Redis itself hides AUTH/HELLO arguments,
but a SET value may still be sensitive data).

Errors: an unknown target -> NotAllowedError listing the configured names; authentication,
ACL (NOPERM) and other server replies -> PermanentError; connection problems and timeouts ->
TemporaryError. Messages name `host:port`, never the password.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, RedisError, ResponseError
from redis.retry import Retry

from responder.adapters.connecting.redis import describe, scrub
from responder.adapters.targets.named_targets import check_name, load_json_object
from responder.errors import NotAllowedError, PermanentError, TemporaryError

_SECTION = re.compile(r"^[a-z]{1,32}$")
_COMMAND_MAX = 200
_SCHEMES = ("redis", "rediss", "unix")


def parse_targets(text: str) -> dict[str, str]:
    """RESPONDER_REDIS_TARGETS (a JSON object name -> URL) as a dict.

    Raises ValueError naming the problem (never a password): not a JSON object, a bad name, a
    URL that is not a string with scheme redis://, rediss:// or unix://.
    """
    setting, example = "RESPONDER_REDIS_TARGETS", "redis://host:6379/0"
    loaded = load_json_object(text, setting=setting, example=example)
    for name, url in loaded.items():
        _check_target(name, url)
    return dict(loaded)


def _check_target(name: object, url: object) -> None:
    check_name("Redis", name)
    if not isinstance(url, str) or url.split("://", 1)[0].lower() not in _SCHEMES:
        raise ValueError(
            f"Redis target {name!r}: the URL must start with redis://, rediss:// or unix://"
        )


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def _slowlog_entry(entry: Mapping[str, Any]) -> dict[str, object]:
    command = str(_text(entry.get("command", "")))
    if len(command) > _COMMAND_MAX:
        command = command[:_COMMAND_MAX] + "…"
    return {
        "id": entry.get("id"),
        "start_time": entry.get("start_time"),
        "duration_us": entry.get("duration"),
        "command": command,
        "client_address": _text(entry.get("client_address")),
        "client_name": _text(entry.get("client_name")),
    }


class RedisInfoApi:
    """`RedisApi` over named Redis targets; one short-lived client per call."""

    def __init__(self, targets: Mapping[str, str]) -> None:
        for name, url in targets.items():
            _check_target(name, url)
        self._targets = dict(targets)

    def names(self) -> tuple[str, ...]:
        """The configured target names, sorted."""
        return tuple(sorted(self._targets))

    async def info(self, target: str, section: str, *, timeout_seconds: float) -> dict[str, object]:
        """`INFO <section>` of `target` as a dict (fields vary by Redis version)."""
        if not _SECTION.match(section):
            raise PermanentError(f"invalid INFO section {section[:40]!r}")
        found = await self._call(
            target, f"INFO {section}", timeout_seconds, lambda r: r.info(section)
        )
        return {str(key): _text(value) for key, value in dict(found).items()}

    async def slowlog(
        self, target: str, count: int, *, timeout_seconds: float
    ) -> list[dict[str, object]]:
        """`SLOWLOG GET <count>` of `target`, newest first."""
        if count < 0:
            raise PermanentError(f"the SLOWLOG count must be >= 0, got {count}")
        found = await self._call(
            target, "SLOWLOG GET", timeout_seconds, lambda r: r.slowlog_get(count)
        )
        return [_slowlog_entry(entry) for entry in found]

    async def _call(
        self,
        target: str,
        what: str,
        timeout_seconds: float,
        command: Callable[[Redis], Awaitable[Any]],
    ) -> Any:
        url = self._url(target)
        prefix = f"Redis target {target!r} ({describe(url)}) failed {what}"
        try:
            client = Redis.from_url(
                url,
                socket_timeout=timeout_seconds,
                socket_connect_timeout=timeout_seconds,
                retry=Retry(NoBackoff(), 0),
                decode_responses=True,
            )
        except ValueError as exc:
            raise PermanentError(
                f"{prefix}: the URL is not usable: {scrub(str(exc), url)}"
            ) from None
        try:
            async with asyncio.timeout(2 * timeout_seconds + 0.25):
                return await command(client)
        except (AuthenticationError, ResponseError) as exc:
            detail = scrub(str(exc), url)
            raise PermanentError(
                f"{prefix} ({type(exc).__name__}: {detail}); check the password and the ACL "
                "of the user in RESPONDER_REDIS_TARGETS (it needs +info and +slowlog)"
            ) from exc
        except (RedisError, OSError, TimeoutError) as exc:
            detail = scrub(str(exc) or "no answer in time", url)
            raise TemporaryError(
                f"{prefix} ({type(exc).__name__}: {detail}); check that it is up and "
                "reachable from here",
                delay=2.0,
            ) from exc
        finally:
            await client.aclose(close_connection_pool=True)

    def _url(self, target: str) -> str:
        try:
            return self._targets[target]
        except KeyError:
            known = ", ".join(self.names()) or "(none)"
            raise NotAllowedError(
                f"Redis target {target[:64]!r} is not configured; known targets: {known} "
                "(RESPONDER_REDIS_TARGETS)"
            ) from None
