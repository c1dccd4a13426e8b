"""`responder serve` as a real process: a curl-style post, JSON logs, metrics, SIGHUP, SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.conformance import PAYLOAD_DIR
from tests.support.daemons import READ, TOKEN, Daemon
from tests.support.loopback import free_port
from tests.support.paths import REPO


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    # only SIGHUP reloads in this test
    started = Daemon(tmp_path, rules, RESPONDER_RULES_POLL_SECONDS="3600")
    try:
        started.wait_ready()
        yield started
    finally:
        if started.proc.poll() is None:
            started.proc.kill()
            started.proc.wait()


def test_newcomer_flow_payload_logs_metrics_sighup_and_sigterm(daemon: Daemon) -> None:
    body = (PAYLOAD_DIR / "alertmanager" / "captured-firing-single.json").read_bytes()
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    status, reply = daemon.request("/v1/webhooks/alertmanager", body, headers)
    assert status == 202
    assert json.loads(reply)["alerts"] == 1

    step = daemon.wait_event("step_succeeded", rule="disk-full-triage", step="note")
    assert step["action"] == "log"
    assert step["summary"] == "disk almost full on db-1:9100: Disk almost full on db-1"
    daemon.wait_event("run_finished", rule="disk-full-triage")
    assert daemon.wait_event("alert_received")["alert"] == "DiskFull"

    # alerts no rule acts on are stored too, and logged once per delivery, not once each
    grouped = json.loads(body)
    grouped["alerts"] = [
        {**grouped["alerts"][0], "labels": {"alertname": name}, "fingerprint": f"f{i}"}
        for i, name in enumerate(["NobodyCares", "NobodyCares", "AlsoIgnored"])
    ]
    status, reply = daemon.request(
        "/v1/webhooks/alertmanager", json.dumps(grouped).encode(), headers
    )
    assert status == 202
    ids = json.loads(reply)["ids"]
    unmatched = daemon.wait_event("alerts_unmatched")
    assert (unmatched["count"], unmatched["alert_ids"]) == (3, ids)
    assert unmatched["alerts"] == ["AlsoIgnored", "NobodyCares"]
    assert [e["alert_id"] for e in daemon.events() if e.get("event") == "alert_received"] == [1]

    status, runs = daemon.request("/v1/runs", headers=READ)
    assert status == 200
    [run] = json.loads(runs)["runs"]
    assert run["state"] == "succeeded"

    _, metrics = daemon.request("/metrics")
    text = metrics.decode()
    assert 'responder_alerts_received_total{outcome="accepted",source="alertmanager"} 4.0' in text
    assert 'responder_steps_total{action="log",outcome="succeeded",reason=""} 1.0' in text
    assert 'responder_runs_total{rule="disk-full-triage",state="succeeded"} 1.0' in text
    assert "responder_step_duration_seconds_bucket" in text

    # an invalid rule file is refused on SIGHUP and the old set stays active
    (daemon.rules / "broken.yaml").write_text("id: broken\nsteps: [{id: s, action: nope}]\n")
    daemon.proc.send_signal(signal.SIGHUP)
    rejected = daemon.wait_event("rules_rejected", trigger="sighup")
    assert any("broken.yaml:2: unknown action" in line for line in rejected["errors"])
    (daemon.rules / "broken.yaml").write_text(
        "id: extra\nmatch: {matchers: ['alertname=\"X\"']}\n"
        "steps: [{id: s, action: log, with: {message: hi}}]\n"
    )
    daemon.proc.send_signal(signal.SIGHUP)
    shipped = daemon.wait_event("serving")["rules"]
    assert shipped > 2  # the shipped rule pack
    assert daemon.wait_event("rules_reloaded", trigger="sighup")["rules"] == shipped + 1

    assert daemon.stop() == 0
    names = [e.get("event") for e in daemon.events()]
    assert names.index("draining") < names.index("stopped")
    assert TOKEN not in daemon.log_path.read_text()


def test_insecure_mode_warns_on_start(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "RESPONDER_INSECURE_NO_AUTH": "true",
        "RESPONDER_LISTEN": f"127.0.0.1:{free_port()}",
        "RESPONDER_RULES_DIR": str(REPO / "rules"),
        "RESPONDER_DATA_DIR": str(tmp_path),
        "RESPONDER_LOG_FORMAT": "json",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "responder", "serve"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())
    while json.loads(proc.stdout.readline())["event"] != "serving":
        pass
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert first["event"] == "insecure_no_auth"
    assert first["level"] == "warning"
    assert proc.returncode == 0
