"""Coordinator harnesses: how to open each implementation and move its clock."""

from __future__ import annotations

from typing import Protocol

from responder.adapters.memory_coordinator import MemoryCoordinator
from responder.ports import Coordinator

COORDINATOR_IMPLEMENTATIONS = ["memory"]


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
