"""Ports onto monitored targets, by name: SQL on PostgreSQL servers, read-only commands on Redis."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class SqlApi(Protocol):
    """Queries against a monitored PostgreSQL (not responder's own store), by target name."""

    async def fetch(
        self,
        target: str,
        sql: str,
        params: Mapping[str, object],
        *,
        read_only: bool,
        timeout_seconds: float,
    ) -> list[dict[str, object]]:
        """Run one statement on the named target (RESPONDER_POSTGRES_TARGETS) and return rows.

        `read_only` runs it in a read-only transaction. Raises NotAllowedError for an unknown
        target, TemporaryError when the server cannot be reached, PermanentError otherwise.
        """
        ...


class RedisApi(Protocol):
    """Read-only commands against a monitored Redis (not responder's coordinator), by name."""

    async def info(self, target: str, section: str, *, timeout_seconds: float) -> dict[str, object]:
        """`INFO <section>` of the named target (RESPONDER_REDIS_TARGETS)."""
        ...

    async def slowlog(
        self, target: str, count: int, *, timeout_seconds: float
    ) -> list[dict[str, object]]:
        """`SLOWLOG GET <count>` of the named target."""
        ...
