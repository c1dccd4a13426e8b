"""`responder approvals ...` and `responder runs ...` as subprocesses against a real daemon."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemons import HEADERS, Daemon
from tests.support.loopback import free_port
from tests.support.paths import REPO
from tests.support.payload_builders import am_alert, am_body

RULE = """
id: gated-log
match: {matchers: ['alertname="DiskFull"']}
steps:
  - {id: look, action: log, with: {message: "evidence for {{ labels.instance }}"}}
  - id: act
    action: log
    approval: true
    with: {message: "acting on {{ labels.instance }}"}
"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    workdir = tmp_path_factory.mktemp("cli-client")
    rules = workdir / "rules"
    rules.mkdir()
    (rules / "gated.yaml").write_text(RULE)
    started = Daemon(workdir, rules, RESPONDER_APPROVER_TOKENS="alice:alice-token")
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()


def cli(
    *args: str, server: str | None = None, token: str | None = "alice-token"
) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    if server:
        env["RESPONDER_SERVER"] = server
    if token is not None:
        env["RESPONDER_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "responder", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def url(daemon: Daemon) -> str:
    return f"http://127.0.0.1:{daemon.port}"


def wait_json(daemon: Daemon, *args: str, until: Any, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        done = cli(*args, "--json", server=url(daemon))
        assert done.returncode == 0, done.stderr
        body = json.loads(done.stdout)
        if until(body):
            return body
        assert time.monotonic() < deadline, f"not reached: {body}\n{daemon.log_path.read_text()}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def pending(daemon: Daemon) -> dict[str, Any]:
    """The daemon received one alert; its run waits for an approval of step `act`."""
    status, _ = daemon.request(
        "/v1/webhooks/alertmanager", am_body(am_alert(fingerprint="cli1")), HEADERS
    )
    assert status == 202
    body = wait_json(
        daemon, "approvals", "list", "--status", "pending", until=lambda b: b["approvals"]
    )
    approval: dict[str, Any] = body["approvals"][0]
    return approval


def test_approvals_list_shows_the_pending_step_as_a_table(
    daemon: Daemon, pending: dict[str, Any]
) -> None:
    done = cli("approvals", "list", "--status", "pending", server=url(daemon))
    assert done.returncode == 0, done.stderr
    header, row, *rest = done.stdout.splitlines()
    assert header.split()[:5] == ["ID", "STATE", "RULE", "STEP", "ACTION"]
    assert row.split()[:5] == [pending["approval_id"], "pending", "gated-log", "act", "log"]
    assert rest == []
    assert header.index("STATE") == row.index("pending")  # aligned columns


def test_approve_runs_the_step_and_the_timeline_names_the_approver(
    daemon: Daemon, pending: dict[str, Any]
) -> None:
    server = url(daemon)
    done = cli("approvals", "approve", pending["approval_id"], "--comment", "ok", server=server)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"approved: approval {pending['approval_id']} (run {pending['run_id']}, step act) by alice"
    )
    wait_json(daemon, "runs", "show", pending["run_id"], until=lambda b: b["state"] == "succeeded")

    listed = cli("runs", "list", "--rule", "gated-log", server=server)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split()[:3] == ["RUN", "ID", "RULE"]
    assert row.split()[:4] == [pending["run_id"], "gated-log", "succeeded", "alertmanager"]
    assert "2/2" in row

    shown = cli("runs", "show", pending["run_id"], server=server)
    assert shown.returncode == 0, shown.stderr
    assert f"run:      {pending['run_id']}" in shown.stdout
    steps = shown.stdout.split("steps:\n")[1].split("\n\n")[0].splitlines()
    assert [line.split()[:3] for line in steps[1:]] == [
        ["look", "log", "succeeded"],
        ["act", "log", "succeeded"],
    ]
    granted = [line.split() for line in shown.stdout.splitlines() if "approval_granted" in line]
    assert [row[2:5] for row in granted] == [["approval_granted", "alice", "act"]]

    timeline = cli("runs", "timeline", pending["run_id"], "--markdown", server=server)
    assert timeline.returncode == 0, timeline.stderr
    lines = timeline.stdout.splitlines()
    assert lines[0] == "## Timeline"
    assert lines[2].startswith(f"Rule `gated-log`, run `{pending['run_id']}` (succeeded)")
    bullets = [line.split(" UTC** — ", 1)[1] for line in lines[4:]]
    ran_on = [bullet.split(" — on `")[1] for bullet in bullets if " — on `" in bullet]
    assert len(ran_on) == 2  # each step names the replica that ran it
    bullets = [bullet.split(" — on `")[0] for bullet in bullets]
    assert bullets == [
        "detection: alert `DiskFull` (alertmanager) matched rule `gated-log`",
        'diagnostic `look` (log) ok — "evidence for db-1:9100"',
        "approval requested for step `act` (log; the rule asks, expires "
        + bullets[2].split("expires ")[1],
        'step `act` approved by alice: "ok"',
        'diagnostic `act` (log) ok — "acting on db-1:9100"',
        "run finished: succeeded",
    ]
    table = cli("runs", "timeline", pending["run_id"], server=server)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == ["AT", "(UTC)", "KIND", "WHAT"]
    assert re.search(r"approval +step `act` approved by alice", table.stdout), table.stdout


def test_a_second_decision_is_a_conflict(daemon: Daemon, pending: dict[str, Any]) -> None:
    cli("approvals", "approve", pending["approval_id"], server=url(daemon))  # decided now or before
    again = cli("approvals", "approve", pending["approval_id"], server=url(daemon))
    assert again.returncode == 1
    assert again.stdout == ""
    assert again.stderr.strip() == "error: 409 Conflict: approval is already approved"


def test_problem_answers_print_status_title_and_detail(daemon: Daemon) -> None:
    missing = cli("runs", "show", "no-such-run", server=url(daemon))
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        "error: 404 Run not found: no run 'no-such-run'; list runs at /v1/runs"
    )
    wrong = cli("runs", "list", server=url(daemon), token="wrong")
    assert wrong.returncode == 1
    assert wrong.stderr.startswith("error: 401 Unauthorized: ")


def test_an_unreachable_server_says_what_to_check() -> None:
    server = f"http://127.0.0.1:{free_port()}"
    done = cli("runs", "list", server=server)
    assert done.returncode == 1
    assert f"cannot reach {server}" in done.stderr
    assert "RESPONDER_SERVER" in done.stderr
    assert "responder serve" in done.stderr


def test_a_missing_token_or_a_bad_server_url_is_a_usage_error() -> None:
    no_token = cli("approvals", "list", token=None)
    assert no_token.returncode == 2
    assert "RESPONDER_TOKEN" in no_token.stderr
    bad = cli("runs", "list", "--server", "file:///etc/passwd")
    assert bad.returncode == 2
    assert "not an http(s) URL" in bad.stderr


def test_help_names_the_token_variable(tmp_path: Path) -> None:
    done = cli("approvals", "approve", "--help", token=None)
    assert done.returncode == 0
    assert "RESPONDER_TOKEN" in done.stdout
    assert "RESPONDER_SERVER" in done.stdout


def test_timeline_endpoint_answers_json_and_refuses_unknown_formats(
    daemon: Daemon, pending: dict[str, Any]
) -> None:
    path = f"/v1/runs/{pending['run_id']}/timeline"
    alice = {"Authorization": "Bearer alice-token"}
    status, raw = daemon.request(path, headers=alice)
    assert status == 200
    body = json.loads(raw)
    assert body["run_id"] == pending["run_id"]
    assert body["entries"][0]["kind"] == "detection"
    assert body["markdown"].startswith("## Timeline\n")
    assert daemon.request(path + "?format=xml", headers=alice)[0] == 400
    assert daemon.request(path)[0] == 401
    assert daemon.request("/v1/runs/nope/timeline", headers=alice)[0] == 404
    done = cli("runs", "timeline", pending["run_id"], "--json", server=url(daemon))
    assert json.loads(done.stdout)["run_id"] == pending["run_id"]
