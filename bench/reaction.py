"""Reaction latency: from a webhook's send to the first step of the matching rule starting.

One rule matches `alertname="BenchReaction"`; its first step is an `http.request` to a
loopback target (`bench.arrivals`, its own process) that records when each request arrives,
on the same wall clock the generator stamps its sends with. The open-loop generator sends a
background of 1,000 non-matching alerts/s plus matching alerts (each a new alert, its
sequence number in the URL the step calls) at a constant rate; the reaction time of one is
its arrival at the target minus its scheduled send time.

Baseline, in the same run and under the same background: the generator sends the same
stream straight to the target (`/direct/<seq>`): the floor that two Python processes and
loopback put under any reaction.

Each backend is measured twice: under the target's 1,000 alerts/s, and under 400/s, well
below one replica's saturation on a busy machine (`intake`'s CPU rows give the CPU per
delivery). Near saturation the first figure swings between runs; the second is the engine's
own reaction time. `BENCH_BACKGROUND` replaces the first rate.

    bench/run reaction [--quick]
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from bench import backends, payloads
from bench.context import Context
from bench.loadgen import OpenLoopResult, StreamSpec, open_loop, percentile
from bench.processes import AUTH_HEADERS, http_get, start_daemon, start_target
from bench.report import BenchResult, Row, Target

BACKGROUND = float(os.environ.get("BENCH_BACKGROUND", 1_000.0))
LOW_BACKGROUND = 400.0  # below one replica's saturation, for the engine's own latency
MATCHING = 25.0
PATH = "/v1/webhooks/alertmanager"

RULE = """\
id: bench-reaction
match:
  source: alertmanager
  matchers: ['alertname="BenchReaction"']
steps:
  - id: hit
    action: http.request
    with: {{url: "http://127.0.0.1:{port}/hit/{{{{ labels.seq }}}}"}}
"""


def run(ctx: Context) -> BenchResult:
    """Each backend: background plus matching stream plus the direct baseline stream."""
    seconds = ctx.seconds(20, 2)
    result = BenchResult(
        "reaction",
        "Reaction latency under 1,000 alerts/s",
        f"{MATCHING:g} matching alerts/s among {BACKGROUND:,.0f} non-matching alerts/s "
        f"(1-alert deliveries, open loop, {seconds:.0f} s); reaction = arrival of the rule's "
        "first step (an `http.request`) at a loopback target minus the scheduled send of the "
        "webhook. Baseline: the same generator sending the same stream straight to the "
        "target, under the same background.",
    )
    work = ctx.scratch("reaction")
    noise = work / "noise.json"
    noise.write_bytes(payloads.body([payloads.alert("BenchNoise", f"host-{payloads.SEQ}:9100")]))
    matching = work / "matching.json"
    matching.write_bytes(
        payloads.body(
            [payloads.alert("BenchReaction", f"host-{payloads.SEQ}:9100", seq=payloads.SEQ)]
        )
    )
    for name in ctx.backends:
        for rate in (BACKGROUND, LOW_BACKGROUND):
            got, arrivals = _measure(ctx, name, rate, seconds, noise, matching)
            reaction_ms, missing = _delays(got.streams["match"].records, arrivals, "/hit/")
            direct_ms, _ = _delays(got.streams["direct"].records, arrivals, "/direct/")
            label = name if rate == BACKGROUND else f"{name}, {rate:,.0f} alerts/s background"
            for pct in (50.0, 99.0):
                target = Target("<=", 25.0) if pct == 99.0 and rate == BACKGROUND else None
                result.rows.append(
                    Row(
                        f"{label}: reaction p{pct:g}",
                        percentile(reaction_ms, pct),
                        "ms",
                        percentile(direct_ms, pct),
                        "direct to target",
                        target,
                    )
                )
            result.notes.append(
                f"{label}: {len(reaction_ms):,} matching alerts reached the target, {missing} "
                f"did not (answered non-202 or no step started); background answers "
                + got.streams["noise"].describe_statuses()
                + f"; max reaction {max(reaction_ms, default=0):.1f} ms; generator send lag "
                f"p99 {got.lag_p99_ms:.2f} ms"
            )
    return result


def _measure(
    ctx: Context, name: str, rate: float, seconds: float, noise: Path, matching: Path
) -> tuple[OpenLoopResult, dict[str, float]]:
    """One fresh daemon of backend `name` under `rate` background alerts/s: the generator's
    records and the target's arrival times."""
    run_dir = ctx.scratch(f"reaction-{name}-{rate:.0f}")
    with start_target(run_dir) as target:
        target.wait_ready("/readyz")
        assert target.port is not None
        rules = run_dir / "rules"
        rules.mkdir(exist_ok=True)
        (rules / "reaction.yaml").write_text(RULE.format(port=target.port))
        allowed = f"127.0.0.1:{target.port}"
        with (
            backends.backend(name, run_dir) as backend,
            start_daemon(run_dir, rules, HTTP_ALLOWED_HOSTS=allowed, **backend.settings) as daemon,
        ):
            daemon.wait_ready("/readyz")
            ctx.say(f"{name}: {rate:,.0f} + {MATCHING:g} alerts/s")
            streams = [
                StreamSpec("noise", daemon.url(PATH), rate, [noise], AUTH_HEADERS, template=True),
                StreamSpec(
                    "match", daemon.url(PATH), MATCHING, [matching], AUTH_HEADERS, template=True
                ),
                StreamSpec(
                    "direct",
                    target.url("/direct/__SEQ__"),
                    MATCHING,
                    [matching],
                    AUTH_HEADERS,
                    template=True,
                ),
            ]
            got = open_loop(streams, run_dir, seconds=seconds)
            # let the last accepted matching alerts' runs reach the target
            _wait_hits(target.url("/arrivals"), got.streams["match"].records, 5.0)
            arrivals: dict[str, float] = json.loads(http_get(target.url("/arrivals"))[1])
    return got, arrivals


def _wait_hits(url: str, records: list[tuple[int, float, float, int]], timeout: float) -> None:
    """Wait until the target saw as many `/hit/` requests as alerts were accepted."""
    wanted = sum(1 for r in records if r[3] == 202)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = json.loads(http_get(url)[1])
        if sum(1 for path in seen if path.startswith("/hit/")) >= wanted:
            return
        time.sleep(0.2)


def _delays(
    records: list[tuple[int, float, float, int]], arrivals: dict[str, float], prefix: str
) -> tuple[list[float], int]:
    """Arrival minus scheduled send (ms) per accepted request; and how many never arrived."""
    delays: list[float] = []
    missing = 0
    for seq, scheduled, _latency, status in records:
        arrived = arrivals.get(f"{prefix}{seq}")
        if arrived is None or status not in (200, 202):
            missing += 1
            continue
        delays.append((arrived - scheduled) * 1e3)
    return delays, missing
