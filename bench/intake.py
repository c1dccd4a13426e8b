"""Intake throughput: how many webhook deliveries a daemon acknowledges per second.

wrk (closed loop, keep-alive, 64 connections) POSTs one Alertmanager body over and over, for
bodies of 1 alert and of 100 alerts, to a `responder serve` process on each backend with its
default settings (queue of 1,000, 32 workers): only 202 answers count, 503 back-pressure
answers are reported beside them. The baseline is a bare aiohttp app (`bench.bare`) on the
same machine that reads the same body and answers 202.

    bench/run intake [--quick]
"""

from __future__ import annotations

import http.client
import json
import shutil
import time

from bench import backends, payloads
from bench.context import Context
from bench.loadgen import Throughput, wrk_throughput
from bench.processes import (
    AUTH_HEADERS,
    REPO,
    TOKEN,
    Child,
    http_get,
    start_bare_server,
    start_daemon,
)
from bench.report import BenchResult, Row, Target

GROUP = 100
PATH = "/v1/webhooks/alertmanager"


def wait_drained(daemon: Child, timeout: float) -> None:
    """Wait until the daemon's queue is empty (read from /readyz), at most `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, raw = http_get(daemon.url("/readyz"))
        if status == 200 and "(0/" in json.loads(raw)["checks"]["intake"]:
            return
        time.sleep(0.1)


def cpu_per_delivery(server: Child, body: bytes, count: int, *, drain: bool) -> float:
    """CPU ms the server spends per delivery: `count` POSTs on one keep-alive connection.

    Sequential (a 503 of a full queue is retried after 50 ms; it costs little). With `drain`,
    the daemon's workers finish processing them before the CPU time is read, so the figure
    covers intake and processing.
    CPU time, unlike throughput, hardly depends on what else the machine is running.
    """
    assert server.port is not None
    before = server.cpu_seconds()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        sent = 0
        while sent < count:
            connection.request("POST", PATH, body=body, headers=AUTH_HEADERS)
            response = connection.getresponse()
            response.read()
            if response.status == 503:  # the queue is full: let the workers catch up
                time.sleep(0.05)
                continue
            if response.status != 202:
                raise RuntimeError(f"{server.log_path.name}: {response.status} for a delivery")
            sent += 1
    finally:
        connection.close()
    if drain:
        wait_drained(server, timeout=60)
    return (server.cpu_seconds() - before) / count * 1e3


def _note(label: str, result: Throughput, per_request: int) -> str:
    return (
        f"{label}: {result.accepted:,} accepted ({result.accepted * per_request:,} alerts), "
        f"{result.backpressure:,} answered 503, {result.other:,} other, "
        f"{result.socket_errors:,} socket errors in {result.seconds:.1f} s; "
        f"latency p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms"
    )


def run(ctx: Context) -> BenchResult:
    """Measure the bare baseline, then each backend's daemon, with both bodies."""
    result = BenchResult(
        "intake",
        "Intake throughput",
        "wrk, keep-alive, 64 connections, 1 thread, POSTing one Alertmanager body for "
        f"{ctx.seconds(10):.0f} s per figure; only 202 answers count. Baseline: a bare "
        "aiohttp app reading the same body and answering 202 (same machine, same run). "
        "The daemon runs with its defaults (queue 1,000, 32 workers, log level info). CPU rows: "
        "the server process's CPU time (user + system, all threads) per delivery sent one at "
        "a time on one connection, until the workers have processed it: the inverse of the "
        "most one core can take, and far less sensitive to other load than throughput.",
    )
    work = ctx.scratch("intake")
    single = work / "single.json"
    single.write_bytes(payloads.group("BenchIntake", 1))
    grouped = work / "grouped.json"
    grouped.write_bytes(payloads.group("BenchIntake", GROUP))
    rules = work / "rules"
    rules.mkdir(exist_ok=True)
    shutil.copy(REPO / "rules" / "triage.yaml", rules / "triage.yaml")
    seconds = ctx.seconds(10)

    cpu_count = ctx.count(1_000, 50)
    with start_bare_server(work) as bare:
        bare.wait_ready("/readyz")
        base_cpu_single = cpu_per_delivery(bare, single.read_bytes(), cpu_count, drain=False)
        base_cpu_grouped = cpu_per_delivery(
            bare, grouped.read_bytes(), max(1, cpu_count // 10), drain=False
        )
        ctx.say("baseline: bare aiohttp, 1 alert")
        base_single = wrk_throughput(bare.url(PATH), single, TOKEN, work, seconds=seconds)
        ctx.say("baseline: bare aiohttp, 100 alerts")
        base_grouped = wrk_throughput(bare.url(PATH), grouped, TOKEN, work, seconds=seconds)
    result.notes.append(_note("bare baseline, 1 alert", base_single, 1))
    result.notes.append(_note("bare baseline, 100 alerts", base_grouped, GROUP))

    for name in ctx.backends:
        run_dir = ctx.scratch(f"intake-{name}")
        with (
            backends.backend(name, run_dir) as backend,
            start_daemon(run_dir, rules, **backend.settings) as daemon,
        ):
            daemon.wait_ready("/readyz")
            ctx.say(f"{name}: CPU per delivery")
            cpu_single = cpu_per_delivery(daemon, single.read_bytes(), cpu_count, drain=True)
            cpu_grouped = cpu_per_delivery(
                daemon, grouped.read_bytes(), max(1, cpu_count // 10), drain=True
            )
            ctx.say(f"{name}: 1 alert")
            got_single = wrk_throughput(daemon.url(PATH), single, TOKEN, work, seconds=seconds)
            wait_drained(daemon, timeout=30)
            ctx.say(f"{name}: 100 alerts")
            got_grouped = wrk_throughput(daemon.url(PATH), grouped, TOKEN, work, seconds=seconds)
            wait_drained(daemon, timeout=30)
        result.rows.append(
            Row(
                f"{name}: 1-alert deliveries accepted/s",
                got_single.accepted_per_second,
                "req/s",
                base_single.accepted_per_second,
                "bare aiohttp",
                Target(">=", 0.5, on="ratio", text=">= 50% of baseline"),
            )
        )
        grouped_target = (
            Target(">=", 20_000, text=">= 20,000 alerts/s")
            if name == backends.POSTGRES_REDIS
            else None
        )
        result.rows.append(
            Row(
                f"{name}: alerts/s in 100-alert deliveries",
                got_grouped.accepted_per_second * GROUP,
                "alerts/s",
                base_grouped.accepted_per_second * GROUP,
                "bare aiohttp",
                grouped_target,
            )
        )
        result.rows.append(
            Row(
                f"{name}: CPU per 1-alert delivery, received and processed",
                cpu_single,
                "ms",
                base_cpu_single,
                "bare aiohttp",
            )
        )
        result.rows.append(
            Row(
                f"{name}: CPU per alert in 100-alert deliveries",
                cpu_grouped / GROUP,
                "ms",
                base_cpu_grouped / GROUP,
                "bare aiohttp",
            )
        )
        result.notes.append(_note(f"{name}, 1 alert", got_single, 1))
        result.notes.append(_note(f"{name}, 100 alerts", got_grouped, GROUP))
    return result
