"""Ack latency at a fixed rate: how long a sender waits for the 202 at 1,000 deliveries/s.

The open-loop generator (`bench.open_loop`, its own process) sends 1-alert Alertmanager
deliveries at a constant 1,000 req/s and measures each latency from the request's scheduled
send time, so a stall counts in every request it delays (no coordinated omission). Each
delivery is a distinct alert (its instance is the sequence number). Baseline: the same
generator against the bare aiohttp app (`bench.bare`) in the same run.

    bench/run ack_latency [--quick]
"""

from __future__ import annotations

import shutil

from bench import backends, payloads
from bench.context import Context
from bench.loadgen import OpenLoopResult, StreamSpec, open_loop, percentile
from bench.processes import AUTH_HEADERS, REPO, Child, start_bare_server, start_daemon
from bench.report import BenchResult, Row, Target

RATE = 1_000.0
PATH = "/v1/webhooks/alertmanager"
PERCENTILES = (50.0, 99.0, 99.9)


def measure(ctx: Context, server: Child, body_file: str, seconds: float) -> OpenLoopResult:
    """Send the constant-rate stream to `server`."""
    stream = StreamSpec(
        "ack", server.url(PATH), RATE, [ctx.workdir / body_file], AUTH_HEADERS, template=True
    )
    return open_loop([stream], ctx.scratch("ack"), seconds=seconds)


def summary(name: str, result: OpenLoopResult) -> str:
    """Statuses, achieved rate and the generator's own lateness."""
    stream = result.streams["ack"]
    return (
        f"{name}: {stream.describe_statuses()} in {result.elapsed:.1f} s; "
        f"generator send lag p99 {result.lag_p99_ms:.2f} ms"
    )


def run(ctx: Context) -> BenchResult:
    """Baseline, then each backend."""
    seconds = ctx.seconds(20, 2)
    result = BenchResult(
        "ack_latency",
        "Ack latency at 1,000 req/s",
        f"Open-loop generator in its own process, constant {RATE:,.0f} req/s for "
        f"{seconds:.0f} s, 1-alert deliveries (each a distinct alert), latency from the "
        "scheduled send time to the end of the answer (every answer, whatever its status). "
        "Baseline: the same stream against a bare aiohttp app answering 202.",
    )
    (ctx.workdir / "ack-body.json").write_bytes(
        payloads.body([payloads.alert("BenchAck", f"host-{payloads.SEQ}:9100")])
    )
    rules = ctx.scratch("ack") / "rules"
    rules.mkdir(exist_ok=True)
    shutil.copy(REPO / "rules" / "triage.yaml", rules / "triage.yaml")
    with start_bare_server(ctx.scratch("ack")) as bare:
        bare.wait_ready("/readyz")
        ctx.say("baseline: bare aiohttp")
        base = measure(ctx, bare, "ack-body.json", seconds)
    base_ms = base.streams["ack"].latencies_ms()
    result.notes.append(summary("bare baseline", base))
    for name in ctx.backends:
        work = ctx.scratch(f"ack-{name}")
        with (
            backends.backend(name, work) as backend,
            start_daemon(work, rules, **backend.settings) as daemon,
        ):
            daemon.wait_ready("/readyz")
            ctx.say(f"{name}: {RATE:,.0f} req/s")
            got = measure(ctx, daemon, "ack-body.json", seconds)
        got_ms = got.streams["ack"].latencies_ms()
        for pct in PERCENTILES:
            target = Target("<=", 10.0) if pct == 99.0 else None
            result.rows.append(
                Row(
                    f"{name}: ack latency p{pct:g}",
                    percentile(got_ms, pct),
                    "ms",
                    percentile(base_ms, pct),
                    "bare aiohttp",
                    target,
                )
            )
        result.notes.append(summary(name, got))
    return result
