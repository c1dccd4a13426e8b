"""Coordinator harnesses: how to open each implementation and move its clock."""

from __future__ import annotations

import asyncio
from typing import Protocol

from responder.adapters.coordination.memory import MemoryCoordinator
from responder.adapters.coordination.redis import RedisCoordinator
from responder.ports.coordination import Coordinator

COORDINATOR_IMPLEMENTATIONS = ["memory", "redis"]


class CoordinatorHarness(Protocol):
    """What the coordinator suite needs from an implementation besides the port itself."""

    name: str

    async def open(self) -> Coordinator: ...
    async def advance(self, seconds: float) -> None: ...
    async def aclose(self) -> None: ...


class MemoryHarness:
    """MemoryCoordinators on a fake monotonic clock that tests move by hand."""

    name = "memory"

    def __init__(self) -> None:
        self.clock = 1000.0
        self._opened: list[MemoryCoordinator] = []

    async def open(self) -> Coordinator:
        """A fresh coordinator on this harness's clock."""
        coordinator = MemoryCoordinator(clock=lambda: self.clock)
        self._opened.append(coordinator)
        return coordinator

    async def advance(self, seconds: float) -> None:
        """Let `seconds` pass for claims and cooldowns (a real sleep for a networked one)."""
        self.clock += seconds

    async def aclose(self) -> None:
        """Close every coordinator opened here."""
        for coordinator in self._opened:
            await coordinator.close()


class RedisHarness:
    """RedisCoordinators on a real server, all under one test-private key prefix.

    Every coordinator opened here shares the prefix, so several of them act as replicas of one
    deployment. Time for claims, cooldowns and locks is the server's: `advance` really sleeps.
    """

    name = "redis"

    def __init__(self, url: str, prefix: str, timeout_seconds: float = 2.0) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout_seconds = timeout_seconds
        self._opened: list[RedisCoordinator] = []

    async def open(self) -> Coordinator:
        """Another replica's coordinator on the same server and prefix."""
        coordinator = await RedisCoordinator.open(
            self.url, prefix=self.prefix, timeout_seconds=self.timeout_seconds
        )
        self._opened.append(coordinator)
        return coordinator

    async def advance(self, seconds: float) -> None:
        """Let `seconds` pass on the server's clock (a real sleep)."""
        await asyncio.sleep(seconds)

    async def aclose(self) -> None:
        """Close every coordinator opened here (the prefix's keys are deleted by the fixture)."""
        for coordinator in self._opened:
            await coordinator.close()
