"""Footprint of `responder serve`: start-up to ready, and resident memory when idle.

Start-up: from spawning `python -m responder serve` (embedded default, the shipped rules) to
the first 200 from `GET /readyz`, polled every 5 ms; the median of several starts. Idle RSS:
`VmRSS` of the process 2 s after it is ready with nothing sent. Baseline: the same figures
for the bare aiohttp app (`bench.bare`): the interpreter and aiohttp alone.

    bench/run footprint [--quick]
"""

from __future__ import annotations

import shutil
import statistics
import time

from bench.context import Context
from bench.processes import REPO, Child, start_bare_server, start_daemon
from bench.report import BenchResult, Row, Target


def _measure(child: Child, idle_seconds: float) -> tuple[float, float | None]:
    with child:
        ready = child.wait_ready("/readyz")
        time.sleep(idle_seconds)
        return ready, child.rss_mib()


def run(ctx: Context) -> BenchResult:
    """Start each server several times; the medians."""
    starts = 1 if ctx.quick else 5
    idle_seconds = ctx.seconds(2.0, 0.2)
    result = BenchResult(
        "footprint",
        "Footprint",
        f"Median of {starts} starts of each. Start-up: spawn to the first 200 from "
        f"`/readyz`. Idle RSS: VmRSS {idle_seconds:g} s after ready. Daemon: embedded "
        "default with the shipped rules. Baseline: a bare aiohttp app.",
    )
    rules = ctx.scratch("footprint") / "rules"
    rules.mkdir(exist_ok=True)
    for path in (REPO / "rules").glob("*.yaml"):
        shutil.copy(path, rules / path.name)
    daemon_runs, bare_runs = [], []
    for index in range(starts):
        ctx.say(f"start {index + 1}/{starts}")
        bare_runs.append(_measure(start_bare_server(ctx.scratch("footprint")), idle_seconds))
        work = ctx.scratch(f"footprint-{index}")
        daemon_runs.append(_measure(start_daemon(work, rules), idle_seconds))
    ready = statistics.median(r for r, _ in daemon_runs)
    base_ready = statistics.median(r for r, _ in bare_runs)
    rss = [m for _, m in daemon_runs if m is not None]
    base_rss = [m for _, m in bare_runs if m is not None]
    result.rows.extend(
        [
            Row(
                "start-up to ready",
                ready * 1e3,
                "ms",
                base_ready * 1e3,
                "bare aiohttp",
                Target("<=", 1500.0),
            ),
            Row(
                "idle RSS",
                statistics.median(rss) if rss else None,
                "MiB",
                statistics.median(base_rss) if base_rss else None,
                "bare aiohttp",
                Target("<=", 80.0),
            ),
        ]
    )
    result.notes.append(
        "start-up of each daemon start (ms): " + ", ".join(f"{r * 1e3:.0f}" for r, _ in daemon_runs)
    )
    return result
