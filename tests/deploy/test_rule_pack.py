"""The shipped rule pack (rules/*.yaml): it loads, every rule has a runbook and an example
payload, `rules explain` shows the exact plan for every example, and the conditions that gate
containment hold exactly when the runbook says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from responder.actions.catalog import PolicyCatalog
from responder.actions.shipped import default_registry
from responder.adapters.rule_files.loading import load_rules
from responder.cli import main
from responder.commands.explaining import detect_source, parse_payload
from responder.core.planning import render_step_params, step_view
from responder.core.severities import SeverityScale
from responder.core.templating import build_context, evaluate_condition
from responder.models.alerts import Alert
from responder.models.rules import LoadedRule, StatusSelector
from responder.settings import DEFAULT_SEVERITY_LEVELS
from tests.support.paths import REPO

RULES = REPO / "rules"
EXAMPLES = RULES / "examples"
SEEDS = Path(os.environ.get("RESPONDER_SEEDS_DIR") or REPO / "docs" / "runbooks").resolve()
STARTER_FILE = "triage.yaml"  # the two starter rules; not from a runbook
MODELINE = "# yaml-language-server: $schema=./schema.json"
NAMESPACES = ("waqiti", "dsar", "clinical", "kamkmserve", "identity")
ENV = {
    "RESPONDER_HTTP_ALLOWED_HOSTS": "*.svc",
    "RESPONDER_K8S_ALLOWED_NAMESPACES": ",".join(NAMESPACES),
}
D, C = "diagnostic", "containment"


@dataclass(frozen=True)
class Expected:
    """What `rules explain --json` must show for a rule's example payload."""

    seed: str | None  # the runbook file in the seeds (None: a starter rule)
    title: str | None  # the runbook's playbook title, quoted in the description
    guard_key: str
    steps: tuple[tuple[str, str, str, bool], ...]  # (id, action, class, needs approval)
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)  # step id -> subset
    cooldown: float | None = None
    budgets: tuple[str, ...] = ()
    for_: float | None = None
    sentry_resource: str | None = None


S004, S000, S001 = (
    "004_d1b9c156f90281c2.txt",
    "000_4cdba87875e5a4cc.txt",
    "001_c94c51abe0422d14.txt",
)
S002, S003 = "002_868ef272536fce63.txt", "003_34d298ca25c48e08.txt"


def pods(namespace: str, selector: str) -> dict[str, Any]:
    return {
        "method": "GET",
        "path": f"/api/v1/namespaces/{namespace}/pods?labelSelector={selector}",
    }


def restart(namespace: str, deployment: str) -> dict[str, Any]:
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{deployment}"
    return {
        "method": "PATCH",
        "path": f"{path}?fieldManager=responder",
        "before": {"path": path, "refuse_if": "spec.paused"},
    }


def get(url: str) -> dict[str, Any]:
    return {"method": "GET", "url": url}


def query(target: str, check: str) -> dict[str, Any]:
    return {"target": target, "check": check, "read_only": True}


def logs(namespace: str, grep: str, **pods: Any) -> dict[str, Any]:
    return {"grep": grep, "pods": pods} if pods else {"grep": grep}


WAQITI = "http://{}.waqiti.svc:8080"

EXPECTED: dict[str, Expected] = {
    "alert-delivery-failure": Expected(
        S004,
        "Playbook 1: Alert Delivery Failure",
        "alert-delivery-failure:waqiti/unified-alerting-service",
        (
            ("pods", "k8s.pods", D, False),
            ("error_logs", "k8s.logs", D, False),
            ("breaker_state", "http.request", D, False),
            ("reset_pagerduty", "circuit_breaker.reset", C, False),
            ("reset_slack", "circuit_breaker.reset", C, False),
            ("restart", "k8s.rollout_restart", C, True),
        ),
        {
            "pods": pods("waqiti", "app=unified-alerting-service"),
            "error_logs": logs(
                "waqiti", "ERROR", max_pods=3, selector={"app": "unified-alerting-service"}
            ),
            "breaker_state": get(
                WAQITI.format("unified-alerting-service")
                + "/actuator/metrics/resilience4j.circuitbreaker.state"
            ),
            "reset_pagerduty": {
                "method": "POST",
                "json": {"updateState": "CLOSE"},
                "url": WAQITI.format("unified-alerting-service")
                + "/actuator/circuitbreakers/pagerduty",
            },
            "reset_slack": {
                "url": WAQITI.format("unified-alerting-service") + "/actuator/circuitbreakers/slack"
            },
            "restart": restart("waqiti", "unified-alerting-service"),
        },
        cooldown=900,
        budgets=("3 per 1h", "6 per 1d"),
    ),
    "payment-saga-compensation-storm": Expected(
        S004,
        "Playbook 2: Payment SAGA Compensation Storm",
        "payment-saga-compensation-storm:waqiti/payment-service",
        (
            ("saga_compensated", "http.request", D, False),
            ("saga_started", "http.request", D, False),
            ("breakers", "http.request", D, False),
            ("db_health", "http.probe", D, False),
            ("db_pool", "http.request", D, False),
            ("slow_queries", "postgres.query", D, False),
            ("kafka_lag", "http.request", D, False),
            ("failed_sagas", "k8s.logs", D, False),
            ("scale_consumers", "k8s.scale", C, False),
            ("payments_kill_switch", "feature_flag.disable", C, True),
        ),
        {
            "saga_compensated": get(
                WAQITI.format("payment-service") + "/actuator/metrics/saga.compensated.total"
            ),
            "breakers": get(WAQITI.format("payment-service") + "/actuator/circuitbreakers"),
            "db_health": {
                "url": WAQITI.format("payment-service") + "/actuator/health",
                "expect_json": [{"path": "components.db.status", "equals": "UP"}],
            },
            "slow_queries": {
                **query("payments", "long_running_queries"),
                "params": {"min_age_seconds": 5.0},
            },
            "failed_sagas": logs(
                "waqiti", "SAGA_FAILED|COMPENSATION", selector={"app": "payment-service"}
            ),
            "scale_consumers": {
                "path": "/apis/apps/v1/namespaces/waqiti/deployments/payment-saga-consumer/scale"
                "?fieldManager=responder",
                "json": {"spec": {"replicas": "<current +2, within 1..5>"}},
            },
            "payments_kill_switch": {
                "provider": "http",
                "method": "POST",
                "url": "http://config-service.waqiti.svc:8888/admin/feature-flags",
                "json": {"flag": "payments.enabled", "value": False},
                "headers": {"Authorization": "[REDACTED] (from $CONFIG_SERVICE_ADMIN_AUTH)"},
            },
        },
        cooldown=1800,
        budgets=("2 per 1h", "4 per 1d"),
    ),
    "database-performance-degradation": Expected(
        S000,
        "Playbook: Database Performance Degradation",
        "database-performance-degradation:dsar",
        (
            ("readiness", "http.probe", D, False),
            ("long_queries", "postgres.query", D, False),
            ("blockers", "postgres.query", D, False),
            ("connections", "postgres.query", D, False),
            ("table_sizes", "postgres.query", D, False),
            ("seq_scans", "postgres.query", D, False),
            ("cancel_blocker", "postgres.cancel_query", C, True),
            ("terminate_blocker", "postgres.terminate_backend", C, True),
        ),
        {
            "readiness": get("http://dsar-web.dsar.svc/api/health/readiness"),
            "long_queries": {
                **query("dsar", "long_running_queries"),
                "params": {"min_age_seconds": 5.0, "limit": 20},
            },
            "blockers": query("dsar", "blocking_chains"),
            "connections": query("dsar", "connections_by_state"),
            "table_sizes": {**query("dsar", "table_sizes"), "params": {"limit": 20}},
            "seq_scans": {
                **query("dsar", "seq_scan_heavy_tables"),
                "params": {"min_seq_scans": 1000},
            },
            "cancel_blocker": {
                "rendered_at_run_time": {
                    "pid": "{{ steps.blockers.output.rows[0].blocking_pid }}",
                    "expect_state": "active",
                }
            },
            "terminate_blocker": {"rendered_at_run_time": {"expect_state": "idle in transaction"}},
        },
        cooldown=900,
        budgets=("4 per 1h",),
        for_=120,
    ),
    "error-rate-spike": Expected(
        S001,
        "RUNBOOK: Error Rate Spike",
        "error-rate-spike:clinical/clinical-os",
        (
            ("rollout_events", "k8s.events", D, False),
            ("pods", "k8s.pods", D, False),
            ("error_logs", "k8s.logs", D, False),
            ("health", "http.probe", D, False),
        ),
        {
            "rollout_events": {
                "path": "/api/v1/namespaces/clinical/events?fieldSelector="
                "involvedObject.kind=Deployment,involvedObject.name=clinical-os"
                "&limit=500"
            },
            "pods": {
                "before": {"path": "/apis/apps/v1/namespaces/clinical/deployments/clinical-os"}
            },
            "error_logs": logs("clinical", '"level":"error"', deployment="clinical-os", max_pods=3),
            "health": get("http://clinical-os.clinical.svc/api/health"),
        },
        cooldown=900,
        budgets=("4 per 1h",),
    ),
    "error-rate-spike-kill-switch": Expected(
        S001,
        "RUNBOOK: Error Rate Spike",
        "error-rate-spike-kill-switch:clinical/clinical-os/clinical-notes-ai-summary",
        (
            ("rollout_events", "k8s.events", D, False),
            ("pods", "k8s.pods", D, False),
            ("error_logs", "k8s.logs", D, False),
            ("health", "http.probe", D, False),
            ("disable_feature", "feature_flag.disable", C, True),
        ),
        {
            "disable_feature": {
                "provider": "unleash",
                "method": "POST",
                "url": "http://unleash.unleash.svc:4242/api/admin/projects/default/features/"
                "clinical-notes-ai-summary/environments/production/off",
            },
        },
        cooldown=1800,
        budgets=("2 per 1h", "4 per 1d"),
    ),
    "elevated-error-rate-sentry": Expected(
        S003,
        "1. Elevated Error Rate (5xx)",
        "elevated-error-rate-sentry:kamkmserve",
        (
            ("metrics", "http.request", D, False),
            ("rollout_events", "k8s.events", D, False),
            ("error_logs", "k8s.logs", D, False),
        ),
        {
            "metrics": get("http://kamkmserve.kamkmserve.svc/api/monitoring/metrics"),
            "error_logs": logs(
                "kamkmserve", '"level":"error"|\\bERROR\\b', deployment="kamkmserve"
            ),
        },
        cooldown=900,
        budgets=("4 per 1h",),
        sentry_resource="metric_alert",
    ),
    "authentication-abuse": Expected(
        S001,
        "RUNBOOK: Authentication Abuse Detected",
        "authentication-abuse:clinical/clinical-os",
        (
            ("failure_logs", "k8s.logs", D, False),
            ("rate_limited_logs", "k8s.logs", D, False),
            ("tell_security", "notify.slack", D, False),
        ),
        {
            "failure_logs": logs(
                "clinical",
                'auth\\.signin\\.failure|"status":401',
                deployment="clinical-os",
                max_pods=5,
            ),
            "rate_limited_logs": logs("clinical", '"status":429', deployment="clinical-os"),
        },
        cooldown=900,
        budgets=("4 per 1h",),
    ),
    "webhook-delivery-failures": Expected(
        S000,
        "Playbook: Webhook Delivery Failures",
        "webhook-delivery-failures:dsar/t_8c1f42/wh_51d09a",
        (
            ("readiness", "http.probe", D, False),
            ("metrics", "http.request", D, False),
            ("webhook_logs", "k8s.logs", D, False),
            ("tell_oncall", "notify.slack", D, False),
        ),
        {
            "readiness": get("http://dsar-web.dsar.svc/api/health/readiness"),
            "metrics": get("http://dsar-web.dsar.svc/api/metrics"),
            "webhook_logs": logs("dsar", "(?i)webhook", deployment="dsar-web"),
        },
        cooldown=1800,
        budgets=("3 per 1h",),
    ),
    "export-failures": Expected(
        S000,
        "Playbook: Export Failures",
        "export-failures:dsar/dsar-web",
        (
            ("readiness", "http.probe", D, False),
            ("metrics", "http.request", D, False),
            ("export_logs", "k8s.logs", D, False),
        ),
        {"metrics": get("http://dsar-web.dsar.svc/api/metrics")},
        cooldown=1800,
        budgets=("3 per 1h",),
    ),
    "database-connectivity-loss": Expected(
        S001,
        "RUNBOOK: Database Connectivity Loss",
        "database-connectivity-loss:clinical/clinical-os",
        (
            ("health", "http.probe", D, False),
            ("connections", "postgres.query", D, False),
            ("prisma_errors", "k8s.logs", D, False),
            ("restart", "k8s.rollout_restart", C, True),
        ),
        {
            "health": get("http://clinical-os.clinical.svc/api/health"),
            "connections": query("clinical", "connections_by_state"),
            "restart": restart("clinical", "clinical-os"),
        },
        cooldown=900,
        budgets=("2 per 1h", "4 per 1d"),
    ),
    "audit-log-write-failure": Expected(
        S001,
        "RUNBOOK: Audit Log Failure",
        "audit-log-write-failure:clinical/clinical",
        (
            ("audit_errors", "k8s.logs", D, False),
            ("health", "http.probe", D, False),
            ("table_sizes", "postgres.query", D, False),
            ("connections", "postgres.query", D, False),
            ("tell_oncall", "notify.slack", D, False),
        ),
        {"table_sizes": query("clinical", "table_sizes")},
        cooldown=900,
        budgets=("4 per 1h",),
    ),
    "rate-limit-overwhelmed": Expected(
        S001,
        "RUNBOOK: Rate Limit Overwhelmed",
        "rate-limit-overwhelmed:clinical/clinical-os",
        (("throttled_logs", "k8s.logs", D, False), ("tell_product", "notify.slack", D, False)),
        {"throttled_logs": logs("clinical", '"status":429', deployment="clinical-os")},
        cooldown=1800,
        budgets=("2 per 1h",),
    ),
    "encryption-audit-trail-gap": Expected(
        S004,
        "Playbook 3: Encryption Audit Trail Gap",
        "encryption-audit-trail-gap:waqiti/encryption-audit-service",
        (
            ("audit_pods", "k8s.pods", D, False),
            ("audit_errors", "k8s.logs", D, False),
            ("kafka_breaker", "http.request", D, False),
            ("producer_sends", "http.request", D, False),
            ("kafka_pods", "k8s.pods", D, False),
            ("page_compliance", "notify.pagerduty", D, False),
            ("restart_audit", "k8s.rollout_restart", C, True),
        ),
        {
            "audit_pods": pods("waqiti", "app=encryption-audit-service"),
            "kafka_pods": pods("waqiti", "app=kafka"),
            "restart_audit": restart("waqiti", "encryption-audit-service"),
        },
        cooldown=1800,
        budgets=("2 per 1h", "4 per 1d"),
    ),
    "legal-pdf-generation-failure": Expected(
        S004,
        "Playbook 5: Legal PDF Generation Failure",
        "legal-pdf-generation-failure:waqiti/legal-service",
        (
            ("pods", "k8s.pods", D, False),
            ("pdf_logs", "k8s.logs", D, False),
            ("attempts", "http.request", D, False),
            ("failures", "http.request", D, False),
            ("license_logs", "k8s.logs", D, False),
            ("restart", "k8s.rollout_restart", C, True),
        ),
        {
            "failures": get(
                WAQITI.format("legal-service")
                + "/actuator/metrics/legal.pdf.generation.failed.total"
            ),
            "restart": restart("waqiti", "legal-service"),
        },
        cooldown=1800,
        budgets=("2 per 1h",),
    ),
    "legal-documents-disk-full": Expected(
        S004,
        "Playbook 5: Legal PDF Generation Failure",
        "legal-documents-disk-full:waqiti/legal-documents",
        (
            ("pvc_events", "k8s.events", D, False),
            ("pods", "k8s.pods", D, False),
            ("disk_errors", "k8s.logs", D, False),
            ("tell_oncall", "notify.slack", D, False),
        ),
        {
            "pvc_events": {
                "path": "/api/v1/namespaces/waqiti/events?fieldSelector=involvedObject"
                ".kind=PersistentVolumeClaim,involvedObject.name=legal-documents"
                "&limit=500"
            },
            "pods": pods("waqiti", "app=legal-service"),
        },
        cooldown=3600,
        budgets=("3 per 1d",),
    ),
    "high-latency": Expected(
        S003,
        "2. High Latency / Slow Requests",
        "high-latency:kamkmserve/kamkmserve",
        (
            ("metrics", "http.request", D, False),
            ("slow_requests", "k8s.logs", D, False),
            ("pods", "k8s.pods", D, False),
            ("scale_up", "k8s.scale", C, True),
        ),
        {
            "slow_requests": logs("kamkmserve", "Slow request detected", deployment="kamkmserve"),
            "scale_up": {
                "path": "/apis/apps/v1/namespaces/kamkmserve/deployments/kamkmserve/scale"
                "?fieldManager=responder",
                "json": {"spec": {"replicas": "<current +1, within 2..6>"}},
            },
        },
        cooldown=1800,
        budgets=("2 per 1h", "4 per 1d"),
        for_=300,
    ),
    "identity-service-outage": Expected(
        S002,
        "Identity Service Outage",
        "identity-service-outage:identity/identity-service",
        (
            ("database", "postgres.query", D, False),
            ("redis", "redis.info", D, False),
            ("pods", "k8s.pods", D, False),
            ("jwks_webauthn_logs", "k8s.logs", D, False),
        ),
        {
            "database": query("identity", "connections_by_state"),
            "redis": {
                "target": "identity-sessions",
                "commands": ["INFO clients", "INFO replication", "INFO stats"],
            },
        },
        cooldown=900,
        budgets=("4 per 1h",),
    ),
    "disk-full-triage": Expected(
        None,
        None,
        "disk-full-triage:db-1:9100",
        (("note", "log", D, False),),
        {"note": {"message": "disk almost full on db-1:9100: Disk almost full on db-1"}},
        cooldown=600,
        budgets=("6 per 1h",),
    ),
    "sentry-issue-triage": Expected(
        None,
        None,
        "sentry-issue-triage:front-end",
        (("note", "log", D, False),),
        cooldown=300,
        sentry_resource="issue",
    ),
}

# Containment that runs without an engineer's approval, and why the runbook allows it.
UNATTENDED_CONTAINMENT = {
    # 004 Playbook 1 resolution 2: reset both breakers; a no-op when already CLOSED
    ("alert-delivery-failure", "reset_pagerduty"),
    ("alert-delivery-failure", "reset_slack"),
    # 004 Playbook 2 resolution 4: scale consumers on Kafka lag, +2 and never above 5
    ("payment-saga-compensation-storm", "scale_consumers"),
}


def loaded_rules() -> dict[str, LoadedRule]:
    rules = load_rules(
        RULES,
        known_actions=default_registry().names(),
        severity=SeverityScale(DEFAULT_SEVERITY_LEVELS),
    )
    return {r.rule.id: r for r in rules}


def pack_rules() -> list[LoadedRule]:
    return [r for r in loaded_rules().values() if Path(r.location.file).name != STARTER_FILE]


def example_alert(rule_id: str) -> Alert:
    body = (EXAMPLES / f"{rule_id}.json").read_bytes()
    delivery = parse_payload(body, detect_source(body), EXPECTED[rule_id].sentry_resource)
    assert delivery is not None
    [alert] = delivery.alerts
    return alert


def is_subset(expected: Any, actual: Any) -> bool:
    """Whether every key of `expected` (recursively) is in `actual` with the same value."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and is_subset(value, actual[key]) for key, value in expected.items()
        )
    return bool(expected == actual)


# ------------------------------------------------------------------ the pack as files


def test_rules_check_accepts_the_pack() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "responder", "rules", "check", "rules/"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    files = len(list(RULES.glob("*.yaml")))
    assert result.stdout == f"ok: {len(EXPECTED)} rules in {files} files under rules\n"


def test_every_rule_has_an_expectation_and_an_example() -> None:
    ids = set(loaded_rules())
    assert ids == set(EXPECTED), "add the new rule to EXPECTED (and an example payload)"
    examples = {p.stem for p in EXAMPLES.glob("*.json")}
    assert examples == ids


def test_every_pack_rule_names_its_runbook_and_the_runbook_says_it() -> None:
    seeds = {p.name: p.read_text(encoding="utf-8") for p in SEEDS.glob("*.txt")}
    assert len(seeds) == 5, f"expected the five runbooks in {SEEDS}"
    readme = (RULES / "README.md").read_text()
    docs = (REPO / "docs" / "rules.md").read_text()
    for loaded in pack_rules():
        rule, expected = loaded.rule, EXPECTED[loaded.rule.id]
        assert expected.seed is not None, rule.id
        assert expected.title is not None, rule.id
        assert expected.seed in rule.description, rule.id
        assert f'"{expected.title}"' in rule.description, rule.id
        assert expected.title in seeds[expected.seed], (rule.id, expected.title)
        assert f"`{rule.id}`" in readme, f"{rule.id} is missing from the rules/README.md table"
        assert Path(loaded.location.file).name in readme
    assert "never automate" in readme.lower() or "not automated" in readme.lower()
    assert "rules/schema.json" in docs


def test_every_pack_file_points_editors_at_the_schema() -> None:
    for path in RULES.glob("*.yaml"):
        if path.name != STARTER_FILE:
            assert path.read_text().splitlines()[0] == MODELINE, path.name


def test_every_pack_rule_is_guarded_and_fires_only_on_firing_alerts() -> None:
    for loaded in pack_rules():
        rule = loaded.rule
        assert rule.guards.key, rule.id
        assert rule.guards.cooldown is not None, rule.id
        assert rule.guards.budget, rule.id
        assert rule.match.status is StatusSelector.FIRING, rule.id
        assert rule.match.alertname or rule.match.source.value == "sentry", rule.id
        assert rule.enabled, rule.id
        assert not rule.dry_run, rule.id


def test_containment_needs_approval_except_where_the_runbook_automates_it() -> None:
    registry = default_registry()
    unattended = set()
    for loaded in loaded_rules().values():
        for step in loaded.rule.steps:
            containment = registry.get(step.action).action_class.value == C
            if step.action == "http.request":
                containment = step.with_.get("method", "GET") not in ("GET", "HEAD")
            if containment and not step.needs_approval:
                unattended.add((loaded.rule.id, step.id))
    assert unattended == UNATTENDED_CONTAINMENT


def test_scale_steps_are_bounded_and_relative() -> None:
    found = 0
    for loaded in loaded_rules().values():
        for step in loaded.rule.steps:
            if step.action == "k8s.scale":
                found += 1
                assert {"min", "max", "change"} <= step.with_.keys(), loaded.rule.id
                assert 1 <= step.with_["min"] < step.with_["max"] <= 10
                assert "allow_zero" not in step.with_
    assert found == 2


def test_audit_data_is_never_touched_by_automation() -> None:
    rule = loaded_rules()["audit-log-write-failure"].rule
    registry = default_registry()
    assert all(registry.get(s.action).action_class.value == D for s in rule.steps)
    checks = {s.with_["check"] for s in rule.steps if s.action == "postgres.query"}
    assert checks == {"table_sizes", "connections_by_state"}


# ------------------------------------------------------------------ explain, per example


def explain_json(
    capsys: pytest.CaptureFixture[str], payload: Path, sentry_resource: str | None
) -> dict[str, Any]:
    args = ["rules", "explain", "--json", "--rules", str(RULES), str(payload)]
    if sentry_resource:
        args += ["--sentry-resource", sentry_resource]
    assert main(args) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


@pytest.mark.parametrize("rule_id", sorted(EXPECTED))
def test_explain_shows_the_plan_of_the_example(
    rule_id: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    expected = EXPECTED[rule_id]
    report = explain_json(capsys, EXAMPLES / f"{rule_id}.json", expected.sentry_resource)
    [alert] = report["alerts"]
    matched = [r for r in alert["rules"] if r["matched"]]
    assert [r["rule"] for r in matched] == [rule_id]
    [entry] = matched
    assert "plan_error" not in entry, entry.get("plan_error")
    plan = entry["plan"]
    assert plan["guard_key"] == expected.guard_key
    assert plan["cooldown"] == expected.cooldown
    assert plan["budgets"] == list(expected.budgets)
    assert plan["for"] == expected.for_
    assert plan["dry_run"] is False
    shown = [(s["id"], s["action"], s["class"], s["approval"]) for s in plan["steps"]]
    assert shown == list(expected.steps)
    requests = {s["id"]: s["request"] for s in plan["steps"]}
    for step_id, subset in expected.requests.items():
        assert is_subset(subset, requests[step_id]), (step_id, requests[step_id])
    if any(approval for *_, approval in expected.steps):
        assert "approval: steps marked approval wait for an engineer" in entry["gate"]


def test_explain_as_a_command_with_the_real_cli() -> None:
    env = {**os.environ, **ENV}
    payload = EXAMPLES / "database-performance-degradation.json"
    result = subprocess.run(
        [sys.executable, "-m", "responder", "rules", "explain", "--rules", "rules", str(payload)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "+ database-performance-degradation" in result.stdout
    assert "step cancel_blocker: postgres.cancel_query (containment, approval)" in result.stdout


def test_without_namespace_allowlist_kubernetes_rules_are_refused_at_plan_time(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESPONDER_HTTP_ALLOWED_HOSTS", "*.svc")
    monkeypatch.delenv("RESPONDER_K8S_ALLOWED_NAMESPACES", raising=False)
    report = explain_json(capsys, EXAMPLES / "alert-delivery-failure.json", None)
    [entry] = [r for r in report["alerts"][0]["rules"] if r["matched"]]
    assert "RESPONDER_K8S_ALLOWED_NAMESPACES" in entry["plan_error"]


# ------------------------------------------------------------------ run-time conditions


def view(state: str = "succeeded", **output: Any) -> dict[str, Any]:
    ok = state == "succeeded"
    return step_view(state, ok, "summary of the step" if ok else "it failed", output)


FAILED = view("failed")


def condition(rule_id: str, step_id: str, steps: dict[str, dict[str, Any]]) -> bool:
    rule = loaded_rules()[rule_id].rule
    [step] = [s for s in rule.steps if s.id == step_id]
    assert step.if_ is not None
    return evaluate_condition(step.if_, build_context(example_alert(rule_id), steps))


def rendered(rule_id: str, step_id: str, steps: dict[str, dict[str, Any]]) -> dict[str, Any]:
    rule = loaded_rules()[rule_id].rule
    [step] = [s for s in rule.steps if s.id == step_id]
    hosts = ("*.svc", "events.pagerduty.com")
    catalog = PolicyCatalog(default_registry(), allowed_hosts=hosts, allowed_namespaces=NAMESPACES)
    context = build_context(example_alert(rule_id), steps)
    return render_step_params(rule_id, step.id, step.action, step.with_, context, catalog)


def blockers(pid: int, state: str) -> dict[str, Any]:
    row = {"blocked_pid": 7001, "blocking_pid": pid, "blocking_state": state}
    return view(rows=[row], row_count=1, blockers=[{"pid": pid, "state": state}])


@pytest.mark.parametrize(
    ("blockers_step", "cancel", "terminate"),
    [
        (blockers(4242, "active"), True, False),
        (blockers(4242, "idle in transaction"), False, True),
        (blockers(0, "idle in transaction"), False, False),  # a prepared transaction
        (view(rows=[], row_count=0, blockers=[]), False, False),
        (FAILED, False, False),
    ],
    ids=["active", "idle-in-transaction", "prepared", "none", "query-failed"],
)
def test_a_root_blocker_is_cancelled_or_terminated_by_its_state(
    blockers_step: dict[str, Any], cancel: bool, terminate: bool
) -> None:
    steps = {"blockers": blockers_step}
    rule = "database-performance-degradation"
    assert condition(rule, "cancel_blocker", steps) is cancel
    assert condition(rule, "terminate_blocker", steps) is terminate
    if cancel:
        params = rendered(rule, "cancel_blocker", steps)
        assert params["pid"] == 4242
        assert (params["target"], params["expect_state"]) == ("dsar", "active")
    if terminate:
        params = rendered(rule, "terminate_blocker", steps)
        assert (params["pid"], params["expect_state"]) == (4242, "idle in transaction")


@pytest.mark.parametrize(
    ("lag", "scale"),
    [
        (
            view(
                status=200,
                json={
                    "status": "success",
                    "data": {
                        "resultType": "vector",
                        "result": [{"metric": {}, "value": [1795000000.0, "18250"]}],
                    },
                },
            ),
            True,
        ),
        (
            view(
                status=200,
                json={"status": "success", "data": {"resultType": "vector", "result": []}},
            ),
            False,
        ),
        (view(status=200, body="<html>login</html>"), False),
        (FAILED, False),
    ],
    ids=["lag-above-1000", "lag-below", "not-json", "prometheus-down"],
)
def test_consumers_are_scaled_only_on_kafka_lag(lag: dict[str, Any], scale: bool) -> None:
    assert (
        condition("payment-saga-compensation-storm", "scale_consumers", {"kafka_lag": lag}) is scale
    )


def pod_counts(count: int, ready: int) -> dict[str, Any]:
    return view(count=count, ready=ready, restarts=3, pods=[], worst=None)


@pytest.mark.parametrize(
    ("rule_id", "step_id", "pods_step"),
    [
        ("alert-delivery-failure", "restart", "pods"),
        ("encryption-audit-trail-gap", "restart_audit", "audit_pods"),
    ],
)
def test_restarts_are_offered_only_when_pods_are_not_ready(
    rule_id: str, step_id: str, pods_step: str
) -> None:
    assert condition(rule_id, step_id, {pods_step: pod_counts(3, 1)}) is True
    assert condition(rule_id, step_id, {pods_step: pod_counts(3, 3)}) is False
    assert condition(rule_id, step_id, {pods_step: pod_counts(0, 0)}) is False
    assert condition(rule_id, step_id, {pods_step: FAILED}) is False


def test_the_app_is_restarted_only_when_the_connection_pool_is_exhausted() -> None:
    rule = "database-connectivity-loss"
    assert condition(rule, "restart", {"connections": view(usage_ratio=0.96)}) is True
    assert condition(rule, "restart", {"connections": view(usage_ratio=0.4)}) is False
    assert condition(rule, "restart", {"connections": FAILED}) is False


@pytest.mark.parametrize(
    ("rule_id", "step_id"),
    [
        ("authentication-abuse", "tell_security"),
        ("webhook-delivery-failures", "tell_oncall"),
        ("audit-log-write-failure", "tell_oncall"),
        ("rate-limit-overwhelmed", "tell_product"),
        ("legal-documents-disk-full", "tell_oncall"),
        ("encryption-audit-trail-gap", "page_compliance"),
    ],
)
def test_notifications_render_from_the_earlier_steps(rule_id: str, step_id: str) -> None:
    rule = loaded_rules()[rule_id].rule
    earlier: dict[str, dict[str, Any]] = {}
    for step in rule.steps:
        if step.id == step_id:
            break
        earlier[step.id] = view() if len(earlier) % 2 else FAILED
    params = rendered(rule_id, step_id, earlier)
    text = json.dumps(params)
    assert "summary of the step" in text or "it failed" in text
    assert "{{" not in text
