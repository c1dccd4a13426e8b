"""End to end with a real Alertmanager (and Prometheus) on loopback, against `responder serve`.

Alertmanager 0.25 (Debian) delivers to a real responder process (embedded SQLite in a temporary
directory) through a `webhook_configs` receiver with `send_resolved: true` and a bearer token
read from `credentials_file`. Alerts come from a real Prometheus rule (`vector(1) > 0`) or are
posted to Alertmanager's `POST /api/v2/alerts`, as Prometheus does. Steps call a local aiohttp
target. Scenarios, and what they showed: docs/reliability.md ("Real Alertmanager").

Blocking work (process start, urllib) runs in threads so the target keeps answering.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.support.alertmanager_service import (
    ALERTMANAGER_NAMES,
    PROMETHEUS_NAMES,
    Alertmanager,
    Prometheus,
    api_alert,
    require,
    webhook_config,
)
from tests.support.daemons import TOKEN, Daemon
from tests.support.loopback import free_port
from tests.support.operator_api import OperatorApi
from tests.support.polling import eventually
from tests.support.targets import Target

T = TypeVar("T")

READER_TOKEN = "e2e-reader-token"
APPROVER_TOKEN = "e2e-approver-token"
READ = {"Authorization": f"Bearer {READER_TOKEN}"}
DECIDE = {"Authorization": f"Bearer {APPROVER_TOKEN}", "Content-Type": "application/json"}
WEBHOOK_PATH = "/v1/webhooks/alertmanager"


class RanTwiceError(AssertionError):
    """An alert occurrence got more than one run, or a step reached its target twice."""


class Stack:
    """The processes of one test; everything still running is stopped at teardown."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.daemons: list[Daemon] = []
        self.servers: list[Alertmanager | Prometheus] = []

    def responder(
        self,
        target: Target,
        rules: str,
        port: int | None = None,
        env: dict[str, str] | None = None,
        *,
        wait: bool = True,
    ) -> Daemon:
        """Start `responder serve` (SQLite in tmp_path/responder/data) with `rules` and extra
        `env`; unless `wait` is false, wait until it is ready."""
        rules_dir = self.tmp_path / "rules"
        rules_dir.mkdir(exist_ok=True)
        (rules_dir / "e2e.yaml").write_text(rules)
        settings = {
            "RESPONDER_READER_TOKENS": f"reader:{READER_TOKEN}",
            "RESPONDER_APPROVER_TOKENS": f"alice:{APPROVER_TOKEN}:sre",
            "RESPONDER_HTTP_ALLOWED_HOSTS": target.host,
            "RESPONDER_RULES_POLL_SECONDS": "3600",
            "RESPONDER_TIMER_POLL_SECONDS": "0.2",
            "RESPONDER_DRAIN_SECONDS": "3",
            "RESPONDER_STEP_TIMEOUT_SECONDS": "5",
            "RESPONDER_STEP_MAX_ATTEMPTS": "1",
            **(env or {}),
        }
        daemon = Daemon(self.tmp_path / "responder", rules_dir, port, **settings)
        self.daemons.append(daemon)
        if wait:
            daemon.wait_ready()
        return daemon

    def alertmanager(self, daemon: Daemon, token: str) -> tuple[Alertmanager, Path]:
        """Start Alertmanager sending to `daemon`, `token` in its credentials file."""
        credentials = self.tmp_path / "responder-token"
        credentials.write_text(token + "\n")
        url = f"http://127.0.0.1:{daemon.port}{WEBHOOK_PATH}"
        manager = Alertmanager(webhook_config(url, credentials), self.tmp_path / "alertmanager")
        self.servers.append(manager)
        manager.start()
        return manager, credentials

    def prometheus(self, rules: str, manager: Alertmanager) -> Prometheus:
        """Start Prometheus evaluating `rules` and sending to `manager`."""
        server = Prometheus(rules, manager.url, self.tmp_path / "prometheus")
        self.servers.append(server)
        server.start()
        return server

    def close(self) -> None:
        for server in reversed(self.servers):
            server.stop()
        for daemon in self.daemons:
            if daemon.proc.poll() is None:
                daemon.kill()

    def logs(self) -> str:
        """The tail of every log, for failure messages."""
        parts = [f"--- {d.log_path.name}\n{d.log_path.read_text()[-3000:]}" for d in self.daemons]
        parts += [f"--- {s.log_path.name}\n{s.log()[-3000:]}" for s in self.servers]
        return "\n".join(parts)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    require(ALERTMANAGER_NAMES, "prometheus-alertmanager")  # skip (or fail under CI) first
    started = Stack(tmp_path)
    try:
        yield started
    finally:
        started.close()


async def until(
    check: Callable[[], Awaitable[T | None]],
    stack: Stack,
    what: str,
    timeout: float = 15.0,
    *,
    state: Callable[[], str] = str,
) -> T:
    """Poll `check` until it returns something other than None/False; fail naming `what`,
    with `state()` and the tail of every log."""
    return await eventually(
        check,
        timeout=timeout,
        interval=0.1,
        what=what,
        explain=lambda: f"{state()}\n{stack.logs()}",
    )


async def get_json(daemon: Daemon, path: str) -> Any:
    """GET an operator API path (reader token), asserting 200."""
    return await OperatorApi.of_daemon(daemon, READ).get_json(path)


async def runs_of(daemon: Daemon, rule: str) -> list[dict[str, Any]]:
    """Every run of `rule` (GET /v1/runs)."""
    return await OperatorApi.of_daemon(daemon, READ).runs(rule=rule, limit="500")


def ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


# --- (a) a firing alert runs its rule ------------------------------------------------------

PROMETHEUS_RULES = """
groups:
  - name: e2e
    interval: 1s
    rules:
      - alert: CheckoutDown
        expr: vector(1) > 0
        labels: {severity: critical, service: checkout}
        annotations: {summary: "checkout is down (always firing)"}
"""


def checkout_rule(target: Target) -> str:
    return f"""
id: checkout-restart
match:
  source: alertmanager
  matchers: ['alertname="CheckoutDown"']
  severity: ">= error"
steps:
  - id: health
    action: http.request
    with: {{url: "{target.base_url}/health/{{{{ labels.service }}}}"}}
  - id: restart
    action: http.request
    with:
      method: POST
      url: "{target.base_url}/restart/{{{{ labels.service }}}}"
      headers: {{X-Alert: "{{{{ alert.name }}}}"}}
      json: {{reason: "{{{{ annotations.summary }}}}", severity: "{{{{ labels.severity }}}}"}}
"""


async def test_prometheus_alert_through_alertmanager_runs_its_rule(
    stack: Stack, target: Target
) -> None:
    require(PROMETHEUS_NAMES, "prometheus")
    # all three start at once: Prometheus needs ~5 s to find Alertmanager anyway, and
    # Alertmanager retries until responder is ready
    daemon = stack.responder(target, checkout_rule(target), wait=False)
    manager, _ = await asyncio.to_thread(stack.alertmanager, daemon, TOKEN)
    prometheus = await asyncio.to_thread(stack.prometheus, PROMETHEUS_RULES, manager)
    await asyncio.to_thread(daemon.wait_ready)

    async def finished() -> dict[str, Any] | None:
        runs = await runs_of(daemon, "checkout-restart")
        return runs[0] if runs and runs[0]["state"] not in ("running", "pending") else None

    run = await until(finished, stack, "the Prometheus alert's run", timeout=30)
    assert run["state"] == "succeeded", run
    assert [s["state"] for s in run["steps"]] == ["succeeded", "succeeded"]
    # the target got exactly the two rendered requests, once each
    assert [(r.method, r.path) for r in target.requests] == [
        ("GET", "/health/checkout"),
        ("POST", "/restart/checkout"),
    ]
    restart = target.requests[1]
    assert restart.json == {"reason": "checkout is down (always firing)", "severity": "critical"}
    assert restart.headers["X-Alert"] == "CheckoutDown"
    assert restart.headers["Content-Type"] == "application/json"
    assert restart.query == {}
    # the alert really came from Prometheus through Alertmanager
    detail = await get_json(daemon, f"/v1/runs/{run['run_id']}")
    alert = detail["alert"]
    assert alert["source"] == "alertmanager"
    assert alert["labels"] == {
        "alertname": "CheckoutDown",
        "service": "checkout",
        "severity": "critical",
    }
    assert alert["links"]["generator"].startswith(f"{prometheus.url}/graph?g0.expr=")
    assert alert["links"]["alertmanager"] == manager.url
    assert alert["raw"]["fingerprint"] == run["fingerprint"]

    async def notified() -> int | None:
        return manager.notify_successes() or None

    assert await until(notified, stack, "Alertmanager logging its delivery") == 1
    assert [e["kind"] for e in detail["audit"]][-1] == "run_finished"


# --- (b) a resolved notification cancels a pending approval --------------------------------


def approval_rule(target: Target) -> str:
    return f"""
id: crashloop-restart
match: {{source: alertmanager, matchers: ['alertname="PodCrashLooping"']}}
steps:
  - id: look
    action: http.request
    with: {{url: "{target.base_url}/look/{{{{ labels.pod }}}}"}}
  - id: restart
    action: http.request
    approval: {{required: true, ttl: 30m, approvers: [sre]}}
    with: {{method: POST, url: "{target.base_url}/restart/{{{{ labels.pod }}}}", json: {{}}}}
"""


async def test_resolved_notification_cancels_the_pending_approval(
    stack: Stack, target: Target
) -> None:
    daemon = await asyncio.to_thread(stack.responder, target, approval_rule(target))
    manager, _ = await asyncio.to_thread(stack.alertmanager, daemon, TOKEN)
    labels = {"alertname": "PodCrashLooping", "pod": "api-7f9c", "severity": "critical"}
    started = ago(60)
    await asyncio.to_thread(manager.post_alerts, api_alert(labels, started))

    async def pending() -> dict[str, Any] | None:
        body = await get_json(daemon, "/v1/approvals?status=pending")
        return body["approvals"][0] if body["approvals"] else None

    approval = await until(pending, stack, "the approval request")
    assert approval["step_id"] == "restart"
    assert approval["approvers"] == ["sre"]
    [run] = await runs_of(daemon, "crashloop-restart")
    assert run["state"] == "waiting_approval"
    assert target.hits("/look/api-7f9c") == 1  # the evidence was gathered

    # the alert resolves in Alertmanager: same labels and start, endsAt in the past
    await asyncio.to_thread(manager.post_alerts, api_alert(labels, started, ends_at=ago(1)))

    async def cancelled() -> dict[str, Any] | None:
        body = await get_json(daemon, "/v1/approvals")
        [current] = [a for a in body["approvals"] if a["approval_id"] == approval["approval_id"]]
        return current if current["state"] != "pending" else None

    decided = await until(cancelled, stack, "the approval cancelled by the resolution")
    assert decided["state"] == "cancelled"
    assert decided["comment"] == "alert_resolved"
    assert decided["decided_by"] is None
    detail = await get_json(daemon, f"/v1/runs/{run['run_id']}")
    assert (detail["state"], detail["reason"]) == ("cancelled", "alert_resolved")
    assert [(s["step_id"], s["state"]) for s in detail["steps"]] == [
        ("look", "succeeded"),
        ("restart", "cancelled"),
    ]
    audit = [(e["kind"], e["reason"]) for e in detail["audit"]]
    assert ("run_cancelled", "alert_resolved") in audit
    received = [e for e in daemon.events() if e.get("event") == "alert_received"]
    assert [e["status"] for e in received] == ["firing", "resolved"]  # Alertmanager sent both

    # a late approval is refused and the containment step never ran
    url = f"/v1/approvals/{approval['approval_id']}/approve"
    status, body = await asyncio.to_thread(daemon.request, url, b"{}", DECIDE)
    assert status == 409, body
    assert json.loads(body)["approval"]["state"] == "cancelled"
    assert target.hits("/restart/api-7f9c") == 0
    assert [r.path for r in target.requests] == ["/look/api-7f9c"]


# --- (c) a wrong token is refused, and Alertmanager delivers once it is fixed ----------------


def note_rule(target: Target, alertname: str, rule_id: str) -> str:
    return f"""
id: {rule_id}
match: {{source: alertmanager, matchers: ['alertname="{alertname}"']}}
steps:
  - id: probe
    action: http.request
    with: {{url: "{target.base_url}/probe/{{{{ labels.n }}}}"}}
"""


async def test_wrong_token_is_refused_and_alertmanager_delivers_after_the_fix(
    stack: Stack, target: Target
) -> None:
    rules = note_rule(target, "QueueBacklog", "backlog-probe")
    daemon = await asyncio.to_thread(stack.responder, target, rules)
    manager, credentials = await asyncio.to_thread(stack.alertmanager, daemon, "not-the-token")
    labels = {"alertname": "QueueBacklog", "n": "1", "severity": "warning"}
    await asyncio.to_thread(manager.post_alerts, api_alert(labels, ago(60)))

    async def refused() -> list[str] | None:
        return manager.notify_failures() or None

    [failure, *_] = await until(refused, stack, "Alertmanager logging the refused notification")
    assert "unexpected status code 401" in failure
    assert "unrecoverable error" in failure  # a 4xx is not retried within the flush ...
    assert "urn:responder:problem:unauthorized" in failure  # ... and it logs our problem body
    rejected = await asyncio.to_thread(
        daemon.wait_event, "webhook_unauthorized", source="alertmanager"
    )
    assert rejected["remote"] == "127.0.0.1"
    assert await runs_of(daemon, "backlog-probe") == []
    assert not [e for e in daemon.events() if e.get("event") == "alert_received"]

    # fix the credentials file Alertmanager reads: it re-reads it on every request and
    # re-sends the un-notified group at the next group_interval
    credentials.write_text(TOKEN + "\n")

    async def ran() -> list[dict[str, Any]] | None:
        runs = await runs_of(daemon, "backlog-probe")
        return runs if runs and runs[0]["state"] == "succeeded" else None

    [run] = await until(ran, stack, "the delivery after the token was fixed")
    assert run["steps"][0]["output"]["status"] == 200
    assert target.hits("/probe/1") == 1

    async def notified() -> int | None:
        return manager.notify_successes() or None

    assert await until(notified, stack, "Alertmanager logging its delivery") == 1
    refusals = len(manager.notify_failures())
    _, metrics = await asyncio.to_thread(daemon.request, "/metrics")
    text = metrics.decode()
    assert 'responder_alerts_received_total{outcome="accepted",source="alertmanager"} 1.0' in text
    counted = f'responder_webhook_rejected_total{{source="alertmanager",status="401"}} {refusals}.0'
    assert counted in text  # every refused attempt was answered 401, and only those
    assert TOKEN not in daemon.log_path.read_text()


# --- (d) a restart (SIGTERM, then kill -9) loses nothing and runs nothing twice --------------


def stored_alerts(daemon: Daemon) -> list[tuple[str, bool, str]]:
    """(fingerprint, processed, label `n`) of every alert row in the daemon's SQLite file."""
    path = Path(daemon.env["RESPONDER_DATA_DIR"]) / "responder.sqlite3"
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as conn:
        rows = conn.execute("SELECT fingerprint, processed_at, alert_json FROM alerts").fetchall()
    return [(row[0], row[1] is not None, json.loads(row[2])["labels"]["n"]) for row in rows]


def stored_numbers(daemon: Daemon) -> set[str]:
    """The label `n` of every alert in the daemon's store (readable while it is down)."""
    return {n for _, _, n in stored_alerts(daemon)}


@pytest.mark.parametrize(
    "coordination",
    [
        "embedded",
        "redis",
    ],
)
async def test_restart_loses_nothing_and_runs_each_alert_once(
    stack: Stack, target: Target, coordination: str, request: pytest.FixtureRequest
) -> None:
    env: dict[str, str] = {"RESPONDER_WORKERS": "4", "RESPONDER_LEASE_SECONDS": "1"}
    if coordination == "redis":
        env["RESPONDER_REDIS_URL"] = request.getfixturevalue("redis_url")
        env["RESPONDER_REDIS_PREFIX"] = request.getfixturevalue("redis_prefix")
    rules = note_rule(target, "BatchLag", "batch-probe")
    port = free_port()  # the same URL for Alertmanager across restarts
    daemon = await asyncio.to_thread(stack.responder, target, rules, port, env)
    manager, _ = await asyncio.to_thread(stack.alertmanager, daemon, TOKEN)
    started = ago(60)
    seen: dict[str, Any] = {}

    def alert(n: int) -> dict[str, Any]:
        return api_alert({"alertname": "BatchLag", "n": str(n), "severity": "warning"}, started)

    async def observe() -> tuple[set[str], dict[str, list[str]]]:
        """(`n` of every stored alert, run states by `n`); `seen` keeps it for failures."""
        runs = await runs_of(daemon, "batch-probe")  # first: their alerts are stored by then
        stored = await asyncio.to_thread(stored_alerts, daemon)
        numbers = {fingerprint: n for fingerprint, _, n in stored}
        states: dict[str, list[str]] = {}
        for run in runs:
            states.setdefault(numbers[run["fingerprint"]], []).append(run["state"])
        unprocessed = sorted({n for _, processed, n in stored if not processed}, key=int)
        seen.update(stored={n for _, _, n in stored}, runs=states, unprocessed=unprocessed)
        return {n for _, _, n in stored}, states

    async def settled(expected: set[str]) -> bool:
        stored, states = await observe()
        busy = {"running", "pending"}
        return (
            stored >= expected
            and not seen["unprocessed"]
            and set(states) >= expected
            and not any(busy & set(s) for s in states.values())
        )

    def state() -> str:
        return f"observed: {seen}, target hits: {Counter(r.path for r in target.requests)}"

    async def acked() -> bool:  # Alertmanager had a 202 since `before` was counted
        return manager.notify_successes() > before

    def once(states: dict[str, list[str]], rerun: tuple[str, ...] = ()) -> None:
        """One run per alert, each probe hit once (those in `rerun`: an interrupted diagnostic
        that a takeover ran again, twice)."""
        twice = sorted((n for n, found in states.items() if len(found) > 1), key=int)
        hit_twice = sorted(
            (n for n in states if target.hits(f"/probe/{n}") > (2 if n in rerun else 1)), key=int
        )
        if twice or hit_twice:
            raise RanTwiceError(
                f"alerts with more than one run: {twice}; targets hit more than once: "
                f"{hit_twice}; {state()}"
            )

    # 1..5 delivered and run, the responder stopped with SIGTERM, 6..8 fire while it is down
    await asyncio.to_thread(manager.post_alerts, *(alert(n) for n in range(1, 6)))
    first = {"1", "2", "3", "4", "5"}
    await until(lambda: settled(first), stack, "the first five runs", state=state)
    assert await asyncio.to_thread(daemon.stop) == 0
    assert await asyncio.to_thread(stored_numbers, daemon) == first  # acknowledged: stored
    before = manager.notify_successes()
    await asyncio.to_thread(manager.post_alerts, *(alert(n) for n in range(6, 9)))

    async def refused() -> bool:
        return bool(manager.log_lines("Notify attempt failed", "connection refused"))

    await until(refused, stack, "Alertmanager failing to reach the stopped responder")
    # Alertmanager retries the group (1..8) until the restarted responder takes it
    daemon = await asyncio.to_thread(stack.responder, target, rules, port, env)
    await until(acked, stack, "Alertmanager's delivery after the restart", 20, state=state)
    expected = {str(n) for n in range(1, 9)}
    await until(lambda: settled(expected), stack, "the group after SIGTERM", state=state)
    stored, states = await observe()
    assert stored == expected
    once(states)

    # kill -9 while the steps of Alertmanager's next delivery (9..12) are at the target.
    # (Killed at random points instead, responder can lose a run: docs/reliability.md, R5.)
    target.delay = 3.0
    before = manager.notify_successes()
    await asyncio.to_thread(manager.post_alerts, *(alert(n) for n in range(9, 13)))
    batch = [str(n) for n in range(9, 13)]

    async def in_flight() -> bool:
        return all(target.hits(f"/probe/{n}") == 1 for n in batch)

    await until(acked, stack, "Alertmanager's delivery of 9..12", state=state)
    await until(in_flight, stack, "the steps of 9..12 at the target", state=state)
    await asyncio.to_thread(daemon.kill)
    expected = {str(n) for n in range(1, 13)}
    assert await asyncio.to_thread(stored_numbers, daemon) == expected  # 202 after the write
    target.delay = 0.0
    daemon = await asyncio.to_thread(stack.responder, target, rules, port, env)
    # a new alert in the group makes Alertmanager send the whole group (1..13) again
    before = manager.notify_successes()
    await asyncio.to_thread(manager.post_alerts, alert(13))
    await until(acked, stack, "Alertmanager's delivery of 13", state=state)
    expected.add("13")
    await until(lambda: settled(expected), stack, "the group after kill -9", 20, state=state)

    stored, states = await observe()
    assert stored == expected  # nothing acknowledged was lost
    assert set(states) == expected  # every alert got a run
    once(states, rerun=tuple(batch))
    for n, [only] in states.items():
        # in flight at the kill -9: taken over by the restart and continued; the interrupted
        # diagnostic (a GET) runs again, the others ran once
        assert target.hits(f"/probe/{n}") == (2 if n in batch else 1), n
        assert only == "succeeded", (n, only)
    duplicates = [
        e
        for e in daemon.events()
        if e.get("event") == "run_skipped" and e.get("reason") == "duplicate"
    ]
    assert len(duplicates) >= 12  # the re-sent group was recognised and recorded as duplicate
    assert await asyncio.to_thread(daemon.stop) == 0
