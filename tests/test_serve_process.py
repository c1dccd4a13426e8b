"""`responder serve` as a real process: a curl-style post, JSON logs, metrics, SIGHUP, SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conformance import PAYLOAD_DIR

REPO = Path(__file__).resolve().parents[1]
TOKEN = "process-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Daemon:
    """One `python -m responder serve` process and a tiny HTTP client for it."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.rules = tmp / "rules"
        shutil.copytree(REPO / "rules", self.rules)
        self.log_path = tmp / "daemon.log"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "RESPONDER_WEBHOOK_TOKEN": TOKEN,
            "RESPONDER_LISTEN": f"127.0.0.1:{self.port}",
            "RESPONDER_RULES_DIR": str(self.rules),
            "RESPONDER_DATA_DIR": str(tmp / "data"),
            "RESPONDER_LOG_FORMAT": "json",
            "RESPONDER_RULES_POLL_SECONDS": "3600",  # only SIGHUP reloads in this test
        }
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "responder", "serve"],
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def request(
        self, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        req = urllib.request.Request(self.url(path), data=body, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log_path.read_text()
            try:
                if self.request("/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("daemon not ready:\n" + self.log_path.read_text())

    def events(self) -> list[dict[str, Any]]:
        lines = self.log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def wait_event(self, name: str, **fields: Any) -> dict[str, Any]:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for event in self.events():
                if event.get("event") == name and all(event.get(k) == v for k, v in fields.items()):
                    return event
            time.sleep(0.05)
        raise AssertionError(f"no {name} {fields} in:\n" + self.log_path.read_text())

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self._log.close()
        return code


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    started = Daemon(tmp_path)
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

    status, runs = daemon.request("/v1/runs", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    [run] = json.loads(runs)["runs"]
    assert run["state"] == "succeeded"

    _, metrics = daemon.request("/metrics")
    text = metrics.decode()
    assert 'responder_alerts_received_total{outcome="accepted",source="alertmanager"} 1.0' in text
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
    assert daemon.wait_event("rules_reloaded", trigger="sighup")["rules"] == 3

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
