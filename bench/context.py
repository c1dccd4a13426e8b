"""What every bench gets from `bench/run`: the mode, a scratch directory, progress output."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import backends


@dataclass
class Context:
    """One bench's run: `quick` shrinks every duration to a smoke test of the machinery.

    `scale` multiplies the quick durations and counts again (the CI smoke test uses 0.3).
    """

    workdir: Path
    quick: bool = False
    scale: float = 1.0
    backends: tuple[str, ...] = (backends.EMBEDDED, backends.POSTGRES_REDIS)
    started: float = field(default_factory=time.perf_counter)

    def seconds(self, full: float, quick: float = 1.0) -> float:
        """A duration: `full` normally, `quick` in quick mode."""
        return quick * self.scale if self.quick else full

    def count(self, full: int, quick: int) -> int:
        """A number of repetitions: `full` normally, `quick` (scaled, at least 1) in quick mode."""
        return max(1, round(quick * self.scale)) if self.quick else full

    def scratch(self, name: str) -> Path:
        """A fresh subdirectory of the work dir."""
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def say(self, message: str) -> None:
        """Progress on stderr, stamped with the seconds since this bench started."""
        print(f"[{time.perf_counter() - self.started:6.1f}s] {message}", file=sys.stderr)
