"""Storm: 100,000 alerts over 1,000 distinct fingerprints in 20 s, against one daemon.

1,000 alerts in 100 Alertmanager groups of 10 (label `service` = the group); every group is
re-notified with all its 10 alerts, so 10,000 deliveries are sent at a constant 500/s by the
open-loop generator (503 answers are not retried). One rule matches every alert with
`guards: {key: "{{ labels.service }}", cooldown: 1h}`, so the guards allow exactly one
executed run per (rule, service) for every service with at least one acknowledged alert (a
group whose every delivery got 503 has nothing to run).

Checked afterwards, from the store itself: every alert id returned in a 202 is in the alerts
table; the runs that started, per guard key; and from the daemon: no 5xx other than 503,
its peak RSS (`VmHWM` of /proc/<pid>/status). Baselines: the keys with an acknowledged
alert, the alerts acknowledged, the deliveries sent and the daemon's idle RSS before the storm.

    bench/run storm [--quick]
"""

from __future__ import annotations

import time

from bench import backends, payloads
from bench.context import Context
from bench.intake import wait_drained
from bench.loadgen import StreamSpec, open_loop
from bench.processes import AUTH_HEADERS, start_daemon
from bench.report import BenchResult, Row, Target

RULE_ID = "bench-storm"
RULE = f"""\
id: {RULE_ID}
match:
  source: alertmanager
  matchers: ['alertname=~"BenchStorm.*"']
guards:
  key: "{{{{ labels.service }}}}"
  cooldown: 1h
steps:
  - id: note
    action: log
    with: {{message: "storm on {{{{ labels.service }}}}"}}
"""
PATH = "/v1/webhooks/alertmanager"


def settle(backend: backends.Backend, timeout: float) -> None:
    """Wait until no run of the storm rule is pending or running (at most `timeout` s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = backend.runs_by_state(RULE_ID)
        if not states.get("pending") and not states.get("running"):
            return
        time.sleep(0.2)


def run(ctx: Context) -> BenchResult:
    """Each backend: the storm, then the checks."""
    groups, size = (10, 10) if ctx.quick else (100, 10)
    seconds = ctx.seconds(20, 2)
    rate = 50.0 if ctx.quick else 500.0
    total = int(rate * seconds) * size
    result = BenchResult(
        "storm",
        "Storm",
        f"{total:,} alerts over {groups * size:,} fingerprints in {seconds:.0f} s: "
        f"{groups} groups of {size} alerts re-notified as {int(rate * seconds):,} "
        f"deliveries at a constant {rate:,.0f}/s (open loop; 503s not retried). One rule, "
        "guard key = the group's `service` label, cooldown 1h: exactly one run per key may "
        "start. Daemon defaults (queue 1,000, 32 workers).",
    )
    work = ctx.scratch("storm")
    bodies = []
    for g in range(groups):
        path = work / f"group-{g}.json"
        path.write_bytes(payloads.group(f"BenchStorm{g}", size, first=g * size, service=f"svc-{g}"))
        bodies.append(path)
    rules = work / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "storm.yaml").write_text(RULE)
    for name in ctx.backends:
        run_dir = ctx.scratch(f"storm-{name}")
        with backends.backend(name, run_dir) as backend:
            with start_daemon(run_dir, rules, **backend.settings) as daemon:
                daemon.wait_ready("/readyz")
                time.sleep(0.5)
                idle = daemon.rss_mib()
                ctx.say(f"{name}: storm of {total:,} alerts")
                stream = StreamSpec(
                    "storm", daemon.url(PATH), rate, bodies, AUTH_HEADERS, collect_ids=True
                )
                got = open_loop([stream], run_dir, seconds=seconds)
                started = time.perf_counter()
                wait_drained(daemon, timeout=60)
                settle(backend, timeout=60)  # the queue is empty; let the last runs finish
                drain = time.perf_counter() - started
                peak = daemon.peak_rss_mib()
            acked = got.streams["storm"].ids
            missing = backend.missing_alerts(acked)
            executed = backend.executed_runs(RULE_ID)
            states = backend.runs_by_state(RULE_ID)
        records = got.streams["storm"].records
        statuses = got.streams["storm"].statuses()
        sent = sum(statuses.values())
        bad = sum(n for status, n in statuses.items() if status not in (202, 503))
        # request `seq` carried group `seq % groups` (the stream cycles through the bodies);
        # a run's guard key is "<rule id>:<rendered key>"
        acked_keys = {
            f"{RULE_ID}:svc-{seq % groups}" for seq, _, _, status in records if status == 202
        }
        exactly_one = sum(1 for key in acked_keys if executed.get(key) == 1)
        repeated = sorted(key for key, count in executed.items() if count > 1)
        result.rows.extend(
            [
                Row(
                    f"{name}: keys with exactly one run started",
                    exactly_one,
                    "keys",
                    len(acked_keys),
                    "keys with an acknowledged alert",
                    Target("==", 1.0, on="ratio", text="every key, once"),
                ),
                Row(
                    f"{name}: acknowledged alerts missing from the store",
                    missing,
                    "alerts",
                    len(acked),
                    "acknowledged",
                    Target("==", 0),
                ),
                Row(
                    f"{name}: answers other than 202 and 503 (5xx, none)",
                    bad,
                    "deliveries",
                    sent,
                    "sent",
                    Target("==", 0),
                ),
                Row(
                    f"{name}: peak RSS (VmHWM)",
                    peak,
                    "MiB",
                    idle,
                    "idle, before the storm",
                    Target("<=", 200.0),
                ),
            ]
        )
        result.notes.append(
            f"{name}: answers "
            + got.streams["storm"].describe_statuses()
            + f"; {len(acked):,} alerts acknowledged ({len(acked) / got.elapsed:,.0f}/s); "
            f"queue drained and runs finished {drain:.1f} s after the last send; runs by state "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(states.items()))
            + f"; keys with more than one run started: {len(repeated)}"
            + (f" (up to {max(executed.values())} for one)" if repeated else "")
            + f"; keys never acknowledged (every delivery refused): {groups - len(acked_keys)}"
        )
    return result
