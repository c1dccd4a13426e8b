"""The CLI as a user runs it: `rules check`, `rules explain`, and `serve` refusing bad config."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from responder.cli import main
from tests.support.conformance import PAYLOAD_DIR
from tests.support.paths import REPO

SHIPPED_RULES = REPO / "rules"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "responder", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=env,
        check=False,
    )


def test_help_lists_the_subcommands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for word in ("serve", "rules", "RESPONDER_"):
        assert word in result.stdout


def test_rules_check_accepts_the_shipped_rules() -> None:
    result = run_cli("rules", "check", str(SHIPPED_RULES))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: ")


def test_rules_check_reports_file_line_per_error(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "id: first\nsteps:\n  - id: s\n    action: nope.nothing\n    with: {}\n"
    )
    (tmp_path / "b.yaml").write_text(
        "id: first\nsteps:\n  - id: s\n    action: log\n    with: {message: hi}\n    bogus: 1\n"
    )
    out, err = io.StringIO(), io.StringIO()
    from responder.commands.checking import check_rules

    assert check_rules(tmp_path, out=out, err=err) == 1
    lines = err.getvalue().splitlines()
    assert any(
        line.startswith(f"{tmp_path / 'a.yaml'}:4: ") and "nope.nothing" in line for line in lines
    )
    assert any(line.startswith(f"{tmp_path / 'b.yaml'}:6: ") for line in lines)
    assert any("duplicate" in line and "first" in line for line in lines)
    assert lines[-1].endswith(f"errors in {tmp_path}")


def test_explain_shows_the_plan_for_a_conformance_payload() -> None:
    payload = PAYLOAD_DIR / "alertmanager" / "captured-firing-single.json"
    result = run_cli("rules", "explain", "--rules", str(SHIPPED_RULES), str(payload))
    assert result.returncode == 0, result.stderr
    assert "source: alertmanager" in result.stdout
    assert "+ disk-full-triage" in result.stdout
    assert "MATCHES" in result.stdout
    assert "disk almost full on db-1:9100: Disk almost full on db-1" in result.stdout
    assert "guard key: disk-full-triage:db-1:9100" in result.stdout


def test_explain_json_for_machines_and_source_detection() -> None:
    payload = PAYLOAD_DIR / "sentry" / "sentry-docs-issue-created.json"
    out, err = io.StringIO(), io.StringIO()
    from responder.commands.explaining import explain

    code = explain(
        payload,
        rules_dir=SHIPPED_RULES,
        source=None,
        sentry_resource="issue",
        as_json=True,
        out=out,
        err=err,
    )
    assert code == 0, err.getvalue()
    report = json.loads(out.getvalue())
    assert report["source"] == "sentry"
    [alert] = report["alerts"]
    assert alert["status"] == "firing"
    rules = {r["rule"]: r for r in alert["rules"]}
    assert "disk-full-triage" in rules
    assert rules["disk-full-triage"]["matched"] is False


def test_explain_has_no_side_effects(tmp_path: Path) -> None:
    payload = PAYLOAD_DIR / "alertmanager" / "captured-firing-grouped-3.json"
    env = {"PATH": "/usr/bin:/bin", "RESPONDER_DATA_DIR": str(tmp_path / "data")}
    result = run_cli("rules", "explain", "--rules", str(SHIPPED_RULES), str(payload), env=env)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "data").exists()


def test_explain_rejects_a_bad_payload(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"alerts": "nope"}')
    result = run_cli("rules", "explain", "--rules", str(SHIPPED_RULES), str(bad))
    assert result.returncode == 1
    assert "not a valid alertmanager payload" in result.stderr


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({}, "RESPONDER_WEBHOOK_TOKEN"),
        ({"RESPONDER_WEBHOOK_TOKEN": "t", "RESPONDER_LISTEN": "nonsense"}, "listen"),
    ],
    ids=["no-token", "bad-setting"],
)
def test_serve_refuses_unsafe_or_invalid_configuration(
    tmp_path: Path, env: dict[str, str], needle: str
) -> None:
    full_env = {"PATH": "/usr/bin:/bin", "RESPONDER_DATA_DIR": str(tmp_path), **env}
    result = run_cli("serve", "--rules", str(SHIPPED_RULES), env=full_env)
    assert result.returncode == 2
    assert needle in result.stderr


def test_serve_refuses_invalid_rules(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("id: Not A Slug\nsteps: []\n")
    env = {
        "PATH": "/usr/bin:/bin",
        "RESPONDER_WEBHOOK_TOKEN": "t",
        "RESPONDER_DATA_DIR": str(tmp_path / "d"),
    }
    result = run_cli("serve", "--rules", str(tmp_path), env=env)
    assert result.returncode == 1
    assert "r.yaml:1" in result.stderr


def test_main_returns_exit_codes_in_process(tmp_path: Path) -> None:
    assert main(["rules", "check", str(SHIPPED_RULES)]) == 0


def test_settings_come_from_env_and_a_config_file(tmp_path: Path) -> None:
    config = tmp_path / "responder.yaml"
    config.write_text("listen: 127.0.0.1:9999\ndry_run: true\nhttp_allowed_hosts: ['*.svc']\n")
    code = (
        "from responder.settings import Settings; s = Settings(); "
        "print(s.http.listen, s.runs.dry_run, s.targets.http_allowed_hosts, s.intake.workers)"
    )
    env = {"PATH": "/usr/bin:/bin", "RESPONDER_CONFIG": str(config), "RESPONDER_WORKERS": "7"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["127.0.0.1:9999", "True", "('*.svc',)", "7"]


@pytest.mark.parametrize(
    ("name", "url", "needle"),
    [
        ("RESPONDER_DATABASE_URL", "postgresql://responder:s3cret@127.0.0.1:1/none", "127.0.0.1:1"),
    ],
    ids=["postgres-down"],
)
def test_serve_exits_clearly_when_a_dependency_is_down_at_start(
    tmp_path: Path, name: str, url: str, needle: str
) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "RESPONDER_WEBHOOK_TOKEN": "t",
        "RESPONDER_DATA_DIR": str(tmp_path),
        "RESPONDER_LISTEN": "127.0.0.1:0",
        "RESPONDER_STORE_TIMEOUT_SECONDS": "2",
        name: url,
    }
    result = run_cli("serve", "--rules", str(SHIPPED_RULES), env=env)
    assert result.returncode == 1
    assert "startup_failed" in result.stderr
    assert needle in result.stderr
    assert "s3cret" not in result.stderr


def test_serve_starts_fail_closed_when_redis_is_down(tmp_path: Path) -> None:
    from tests.support.daemons import Daemon

    daemon = Daemon(
        tmp_path,
        SHIPPED_RULES,
        RESPONDER_REDIS_URL="redis://:s3cret@127.0.0.1:1/0",
        RESPONDER_COORDINATION_TIMEOUT_SECONDS="0.3",
    )
    try:
        daemon.wait_ready()
        warning = daemon.wait_event("coordinator_unavailable")
        assert "127.0.0.1:1" in warning["reason"]
    finally:
        assert daemon.stop() == 0
    assert "s3cret" not in daemon.log_path.read_text()
