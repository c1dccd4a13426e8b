"""Engine throughput: completed runs per second and daemon CPU per run.

Every alert matches one rule whose steps are an `http.request` GET (a diagnostic) and an
`http.request` POST (a containment step) to a loopback target (`bench.arrivals`, its own
process, counting requests per method and path). Each alert is a new one (its own
fingerprint, so dedup and the guard key, which defaults to the fingerprint, are distinct),
and the storm brake is set out of the way (`STORM_MAX` above the run count). The alerts are
sent as fast as the daemon takes them, in Alertmanager deliveries of 10, by 8 concurrent
senders; the intake queue holds them all (no 503). A run is complete when the store says
`succeeded`; runs/s = runs / (first send -> every run succeeded). Daemon CPU per run is
utime + stime of `/proc/<pid>/stat` over the same span, divided by the runs (intake
included). Exactly once: every run succeeded and the target saw exactly one POST per alert.

Baseline, in the same run against the same target: one asyncio client (aiohttp, as many
requests in flight as the daemon has workers) driving the same GET + POST pairs, the limit
for this shape on this machine; its CPU per pair is the bench process's own CPU time.

    bench/run engine [--quick]
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import aiohttp

from bench import backends, payloads
from bench.context import Context
from bench.processes import AUTH_HEADERS, Child, http_get, start_daemon, start_target
from bench.report import BenchResult, Row, Target

RULE_ID = "bench-engine"
RULE = """\
id: bench-engine
match:
  source: alertmanager
  matchers: ['alertname="BenchEngine"']
steps:
  - id: look
    action: http.request
    with: {{url: "http://127.0.0.1:{port}/hit/look-{{{{ labels.seq }}}}"}}
  - id: act
    action: http.request
    with: {{method: POST, url: "http://127.0.0.1:{port}/hit/act-{{{{ labels.seq }}}}", json: {{}}}}
"""
PATH = "/v1/webhooks/alertmanager"
GROUP = 10  # alerts per delivery
SENDERS = 8  # deliveries in flight
WORKERS = 32  # the daemon's default intake workers: the baseline's requests in flight


@dataclass
class EngineRun:
    """What one daemon did with `runs` alerts."""

    runs: int
    seconds: float
    cpu_seconds: float
    succeeded: int
    posts: dict[int, int]  # alert seq -> POSTs the target saw

    @property
    def per_second(self) -> float:
        """Completed runs per second."""
        return self.succeeded / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_ms_per_run(self) -> float:
        """Daemon CPU milliseconds per run."""
        return self.cpu_seconds * 1e3 / max(self.runs, 1)

    @property
    def not_exactly_once(self) -> int:
        """Runs that did not succeed with exactly one containment POST."""
        wrong = sum(1 for seq in range(self.runs) if self.posts.get(seq, 0) != 1)
        return max(wrong, self.runs - self.succeeded)


def run(ctx: Context) -> BenchResult:
    """The baseline, then each backend."""
    runs = ctx.count(4_000, 100)
    result = BenchResult(
        "engine",
        "Engine throughput: runs of a GET + POST rule",
        f"{runs:,} alerts, each matching one rule whose steps are an `http.request` GET "
        "(diagnostic) and POST (containment) to a loopback target; distinct alerts (dedup and "
        f"guard keys distinct), storm brake out of the way; deliveries of {GROUP} sent as fast "
        f"as accepted by {SENDERS} senders, default workers ({WORKERS}). Runs/s = runs "
        "succeeded / (first send -> all succeeded); CPU = the daemon's utime + stime over that "
        "span per run. Baseline: one asyncio client driving the same GET + POST pairs against "
        f"the same target ({WORKERS} in flight).",
    )
    work = ctx.scratch("engine")
    with start_target(work) as target:
        target.wait_ready("/readyz")
        ctx.say(f"baseline: {runs:,} GET + POST pairs")
        pairs_per_s, client_ms = asyncio.run(_baseline(target, runs))
    result.notes.append(
        f"baseline: {pairs_per_s:,.0f} GET + POST pairs/s, {client_ms:.2f} ms client CPU per pair"
    )
    for name in ctx.backends:
        got = _measure(ctx, name, runs)
        result.rows.append(
            Row(
                f"{name}: completed runs/s",
                got.per_second,
                "runs/s",
                pairs_per_s,
                "asyncio client, GET + POST pairs/s",
                Target(">=", 1_000.0),
            )
        )
        result.rows.append(
            Row(
                f"{name}: daemon CPU per run",
                got.cpu_ms_per_run,
                "ms",
                client_ms,
                "asyncio client CPU per pair",
                Target("<=", 1.0),
            )
        )
        result.rows.append(
            Row(
                f"{name}: runs not completed exactly once",
                float(got.not_exactly_once),
                "",
                float(got.runs),
                "runs",
                Target("==", 0.0),
            )
        )
        result.notes.append(
            f"{name}: {got.succeeded:,}/{got.runs:,} runs succeeded in {got.seconds:.1f} s, "
            f"{sum(got.posts.values()):,} POSTs at the target, daemon CPU {got.cpu_seconds:.1f} s"
        )
    return result


def _measure(ctx: Context, name: str, runs: int) -> EngineRun:
    """One fresh daemon of backend `name` given `runs` alerts."""
    run_dir = ctx.scratch(f"engine-{name}")
    bodies = [
        payloads.body(
            [
                payloads.alert("BenchEngine", f"host-{seq}:9100", seq=str(seq))
                for seq in range(first, min(first + GROUP, runs))
            ]
        )
        for first in range(0, runs, GROUP)
    ]
    with start_target(run_dir) as target:
        target.wait_ready("/readyz")
        assert target.port is not None
        rules = run_dir / "rules"
        rules.mkdir(exist_ok=True)
        (rules / "engine.yaml").write_text(RULE.format(port=target.port))
        settings = {
            "HTTP_ALLOWED_HOSTS": f"127.0.0.1:{target.port}",
            "STORM_MAX": str(runs * 2),
            "QUEUE_SIZE": str(max(runs, 1_000)),
        }
        with (
            backends.backend(name, run_dir) as backend,
            start_daemon(run_dir, rules, **settings, **backend.settings) as daemon,
        ):
            daemon.wait_ready("/readyz")
            ctx.say(f"{name}: {runs:,} runs")
            cpu_before = daemon.cpu_seconds()
            started = time.perf_counter()
            asyncio.run(_send(daemon, bodies))
            succeeded = _wait_done(ctx, target, backend, runs, timeout=max(60.0, runs / 20))
            seconds = time.perf_counter() - started
            cpu = daemon.cpu_seconds() - cpu_before
            posts = _posts(target)
    return EngineRun(runs, seconds, cpu, succeeded, posts)


async def _send(daemon: Child, bodies: list[bytes]) -> None:
    """POST every body to the daemon, `SENDERS` at a time; a 503 is retried after 50 ms."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    url = daemon.url(PATH)

    async def sender(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            while True:
                async with session.post(url, data=body, headers=AUTH_HEADERS) as response:
                    await response.read()
                    if response.status == 202:
                        break
                    if response.status != 503:
                        raise RuntimeError(f"daemon answered {response.status}")
                await asyncio.sleep(0.05)

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(sender(session) for _ in range(SENDERS)))


def _wait_done(
    ctx: Context, target: Child, backend: backends.Backend, runs: int, timeout: float
) -> int:
    """Wait until the store says every run succeeded (at most `timeout` s); how many did."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:  # the target first: polling it costs the store nothing
        if sum(_posts(target).values()) >= runs:
            break
        time.sleep(0.05)
    succeeded = 0
    while time.perf_counter() < deadline:
        succeeded = backend.runs_by_state(RULE_ID).get("succeeded", 0)
        if succeeded >= runs:
            return succeeded
        time.sleep(0.02)
    ctx.say(f"timed out: {succeeded}/{runs} runs succeeded; {backend.runs_by_state(RULE_ID)}")
    return succeeded


def _posts(target: Child) -> dict[int, int]:
    """POSTs the target saw per alert seq."""
    counts: dict[str, int] = json.loads(http_get(target.url("/counts"))[1])
    prefix = "POST /hit/act-"
    return {int(k[len(prefix) :]): n for k, n in counts.items() if k.startswith(prefix)}


async def _baseline(target: Child, pairs: int) -> tuple[float, float]:
    """`pairs` GET + POST pairs from one asyncio client: pairs/s and client CPU ms per pair."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for seq in range(pairs):
        queue.put_nowait(seq)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            seq = queue.get_nowait()
            async with session.get(target.url(f"/direct/look-{seq}")) as response:
                await response.read()
            async with session.post(target.url(f"/direct/act-{seq}"), json={}) as response:
                await response.read()

    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=WORKERS)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        cpu_before = time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(WORKERS)))
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
    return pairs / seconds, cpu * 1e3 / pairs
