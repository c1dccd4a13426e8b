"""An open-loop (constant-rate) HTTP load generator, run as its own process.

    python -m bench.open_loop SPEC.json RESULT.json

wrk keeps a fixed number of requests in flight and sends the next one only when an answer
comes back, so a slow answer delays the requests behind it and hides their waiting time
(coordinated omission). This generator instead fixes every request's send time in advance
(`start + i / rate` per stream, like wrk2) and measures each latency from that scheduled
time: a stall of the server shows up in every request it delayed.

SPEC is JSON: `{"duration": seconds, "connections": n, "streams": [{"name", "url",
"rate", "headers", "bodies": [file, ...], "template": bool, "collect_ids": bool}]}`. A
stream cycles through its bodies; with `template`, `__SEQ__` in a body is replaced by the
request's sequence number (in its URL too). RESULT is JSON with, per stream, `records` of
`[seq, scheduled_epoch, latency_seconds, status]` (status 0: no answer) and, with
`collect_ids`, the alert ids of every 202 answer; plus `lag_p99`: how late the generator
itself sent requests (its own noise). Requests go through `bench.raw_http` (pre-built bytes on
keep-alive connections), which costs the shared CPU a fraction of what a client library does.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench.raw_http import HttpError, Pool

SEQ = b"__SEQ__"


class Stream:
    """One request stream of the spec, and what its requests got."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.name: str = spec["name"]
        self.url: str = spec["url"]
        assert self.url.startswith("http://127.0.0.1:"), "loopback targets only"
        self.rate: float = float(spec["rate"])
        self.headers: dict[str, str] = dict(spec.get("headers", {}))
        self.bodies = [Path(p).read_bytes() for p in spec["bodies"]]
        self.template = bool(spec.get("template", False))
        self.collect_ids = bool(spec.get("collect_ids", False))
        self.records: list[tuple[int, float, float, int]] = []
        self.ids: list[int] = []

    def target(self, seq: int) -> str:
        """The URL of request `seq`."""
        return self.url.replace(SEQ.decode(), str(seq)) if self.template else self.url

    def address(self, seq: int) -> tuple[int, str]:
        """The port and path of request `seq` (every target is on 127.0.0.1)."""
        rest = self.target(seq).removeprefix("http://127.0.0.1:")
        port, slash, path = rest.partition("/")
        return int(port), slash + path

    def body(self, seq: int) -> bytes:
        """The body of request `seq`."""
        raw = self.bodies[seq % len(self.bodies)]
        return raw.replace(SEQ, str(seq).encode()) if self.template else raw


async def _send(
    pools: dict[int, Pool],
    stream: Stream,
    seq: int,
    scheduled: float,
    epoch_offset: float,
    seconds: float,
) -> None:
    status = 0
    port, path = stream.address(seq)
    try:
        status, payload = await pools[port].request(
            "POST", path, stream.headers, stream.body(seq), seconds
        )
        if stream.collect_ids and status == 202:
            stream.ids.extend(json.loads(payload).get("ids", []))
    except (HttpError, TimeoutError, OSError):
        status = 0
    latency = time.perf_counter() - scheduled
    stream.records.append((seq, scheduled + epoch_offset, latency, status))


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Send every stream's requests on its timeline; return the records."""
    streams = [Stream(s) for s in spec["streams"]]
    duration = float(spec["duration"])
    schedule: list[tuple[float, int, int]] = []
    for index, stream in enumerate(streams):
        count = int(stream.rate * duration)
        schedule.extend((i / stream.rate, index, i) for i in range(count))
    schedule.sort()
    limit = int(spec.get("connections", 256))
    timeout = float(spec.get("timeout", 30))
    lags: list[float] = []
    tasks: set[asyncio.Task[None]] = set()
    pools = {port: Pool(port, limit) for port in {s.address(0)[0] for s in streams}}
    try:
        epoch_offset = time.time() - time.perf_counter()
        start = time.perf_counter() + 0.1
        position = 0
        while position < len(schedule):
            now = time.perf_counter()
            while position < len(schedule) and start + schedule[position][0] <= now:
                offset, index, seq = schedule[position]
                scheduled = start + offset
                lags.append(now - scheduled)
                task = asyncio.create_task(
                    _send(pools, streams[index], seq, scheduled, epoch_offset, timeout)
                )
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                position += 1
            if position < len(schedule):
                await asyncio.sleep(max(0.0, start + schedule[position][0] - time.perf_counter()))
        if tasks:
            await asyncio.wait(set(tasks))
        elapsed = time.perf_counter() - start
    finally:
        for pool in pools.values():
            pool.close()
    lags.sort()
    return {
        "elapsed": elapsed,
        "lag_p99": lags[int(0.99 * (len(lags) - 1))] if lags else 0.0,
        "streams": {s.name: {"rate": s.rate, "records": s.records, "ids": s.ids} for s in streams},
    }


def main(argv: list[str]) -> int:
    """Read SPEC, run it, write RESULT."""
    spec = json.loads(Path(argv[0]).read_text())
    result = asyncio.run(run(spec))
    Path(argv[1]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
