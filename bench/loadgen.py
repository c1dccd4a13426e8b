"""Driving the load generators (each its own process) and summarising what they measured.

- `wrk_throughput`: closed-loop maximum throughput with Debian's `wrk` and a Lua script that
  POSTs one body and counts answers by status (202 accepted, 503 back-pressure, other).
- `open_loop`: the constant-rate generator of `bench.open_loop`, in a child process.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_WRK_SCRIPT = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
local file = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = file:read("*a")
file:close()

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) accepted = 0; backpressure = 0; other = 0 end
function response(status, headers, body)
  if status == 202 then accepted = accepted + 1
  elseif status == 503 then backpressure = backpressure + 1
  else other = other + 1 end
end
function done(summary, latency, requests)
  local a, b, o = 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("accepted"); b = b + t:get("backpressure"); o = o + t:get("other")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"accepted": %d, "backpressure": %d, "other": %d, "requests": %d, ' ..
    '"duration_us": %d, "socket_errors": %d, "p50_us": %d, "p99_us": %d}\n',
    a, b, o, summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class Throughput:
    """What one wrk run got."""

    accepted: int
    backpressure: int
    other: int
    socket_errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def accepted_per_second(self) -> float:
        """202 answers per second."""
        return self.accepted / self.seconds if self.seconds else 0.0


def wrk_throughput(
    url: str,
    body: Path,
    token: str,
    workdir: Path,
    *,
    seconds: float,
    connections: int = 64,
    threads: int = 1,
) -> Throughput:
    """Run wrk against `url` (keep-alive, `connections` connections) POSTing `body`."""
    assert url.startswith("http://127.0.0.1:"), "loopback targets only"
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed: apt-get install -y wrk")
    script = workdir / "post.lua"
    script.write_text(_WRK_SCRIPT)
    env = {"BENCH_BODY": str(body), "BENCH_TOKEN": token, "PATH": "/usr/bin:/bin"}
    duration = f"{max(1, round(seconds))}s"
    argv = [wrk, "-t", str(threads), "-c", str(connections), "-d", duration, "--timeout", "10s"]
    done = subprocess.run(
        [*argv, "-s", str(script), url],
        capture_output=True,
        text=True,
        env=env,
        timeout=seconds + 60,
        check=False,
    )
    match = re.search(r"^BENCH (\{.*\})$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    data = json.loads(match.group(1))
    return Throughput(
        accepted=data["accepted"],
        backpressure=data["backpressure"],
        other=data["other"],
        socket_errors=data["socket_errors"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1e3,
        p99_ms=data["p99_us"] / 1e3,
    )


@dataclass
class StreamSpec:
    """One constant-rate request stream for `open_loop`."""

    name: str
    url: str
    rate: float
    bodies: list[Path]
    headers: dict[str, str]
    template: bool = False
    collect_ids: bool = False

    def as_json(self) -> dict[str, Any]:
        """The spec as `bench.open_loop` reads it."""
        return {
            "name": self.name,
            "url": self.url,
            "rate": self.rate,
            "bodies": [str(p) for p in self.bodies],
            "headers": self.headers,
            "template": self.template,
            "collect_ids": self.collect_ids,
        }


@dataclass
class StreamResult:
    """Per request: sequence number, scheduled send (epoch s), latency (s), status."""

    records: list[tuple[int, float, float, int]]
    ids: list[int]

    def statuses(self) -> dict[int, int]:
        """How many answers per status (0: no answer)."""
        counts: dict[int, int] = {}
        for record in self.records:
            counts[record[3]] = counts.get(record[3], 0) + 1
        return counts

    def describe_statuses(self) -> str:
        """`1,000 x 202, 3 x 503` (status 0 reads `no answer`)."""
        counts = sorted(self.statuses().items())
        return ", ".join(f"{n:,} x {status or 'no answer'}" for status, n in counts)

    def latencies_ms(self, status: int | None = None) -> list[float]:
        """Latencies from the scheduled send time, ms (only `status` answers if given)."""
        return [r[2] * 1e3 for r in self.records if status is None or r[3] == status]


@dataclass
class OpenLoopResult:
    """What the generator measured, per stream, and its own lateness."""

    streams: dict[str, StreamResult]
    elapsed: float
    lag_p99_ms: float


def open_loop(
    streams: Sequence[StreamSpec],
    workdir: Path,
    *,
    seconds: float,
    connections: int = 256,
) -> OpenLoopResult:
    """Run `bench.open_loop` in a child process and read its result."""
    spec_path = workdir / "open-loop-spec.json"
    result_path = workdir / "open-loop-result.json"
    spec = {
        "duration": seconds,
        "connections": connections,
        "streams": [s.as_json() for s in streams],
    }
    spec_path.write_text(json.dumps(spec))
    done = subprocess.run(
        [sys.executable, "-m", "bench.open_loop", str(spec_path), str(result_path)],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=seconds * 3 + 120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"open-loop generator failed: {done.stdout}\n{done.stderr}")
    data = json.loads(result_path.read_text())
    return OpenLoopResult(
        streams={
            name: StreamResult([tuple(r) for r in s["records"]], list(s["ids"]))
            for name, s in data["streams"].items()
        },
        elapsed=float(data["elapsed"]),
        lag_p99_ms=float(data["lag_p99"]) * 1e3,
    )


def percentile(values: Sequence[float], pct: float) -> float | None:
    """The `pct` percentile (nearest rank) of `values`; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
