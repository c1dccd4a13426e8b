"""`responder rules explain PAYLOAD`: which rules match, the rendered plan, what would stop it."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from responder.actions.catalog import PolicyCatalog
from responder.actions.shipped import default_registry
from responder.adapters.clock import SystemClock
from responder.adapters.coordination.memory import MemoryCoordinator
from responder.adapters.rule_files.loading import format_errors, load_rules
from responder.core.matching import RuleIndex
from responder.core.normalising.alertmanager import parse_alertmanager, parse_grafana
from responder.core.normalising.sentry import parse_sentry
from responder.core.planning import PlanError, plan_rule
from responder.core.resumes import may_contain
from responder.core.severities import SeverityScale
from responder.engine.gating import Gate, Verdict
from responder.errors import PayloadError, RuleSetError
from responder.models.alerts import Alert, Delivery
from responder.models.durations import format_duration
from responder.models.plans import ActionClass, Plan
from responder.settings import Settings


def detect_source(body: bytes) -> str:
    """Guess the sender of a webhook body from its shape."""
    try:
        data = json.loads(body)
    except ValueError:
        return "alertmanager"
    if not isinstance(data, dict):
        return "alertmanager"
    if ("data" in data and "action" in data) or {"project", "event", "level"} <= data.keys():
        return "sentry"
    alerts = data.get("alerts")
    grafana_keys = {"silenceURL", "dashboardURL", "panelURL", "values", "valueString"}
    if "orgId" in data or (
        isinstance(alerts, list)
        and any(isinstance(a, dict) and grafana_keys & a.keys() for a in alerts)
    ):
        return "grafana"
    return "alertmanager"


def parse_payload(body: bytes, source: str, sentry_resource: str | None) -> Delivery | None:
    """Parse a body as `source` would have delivered it."""
    if source == "sentry":
        return parse_sentry(body, resource=sentry_resource, request_id=None)
    return parse_grafana(body) if source == "grafana" else parse_alertmanager(body)


def explain(
    payload: Path,
    *,
    rules_dir: Path | None,
    source: str | None,
    sentry_resource: str | None,
    as_json: bool,
    out: TextIO,
    err: TextIO,
) -> int:
    """Print the explanation; exit 0, or 1 for unreadable input or invalid rules."""
    settings = Settings()
    try:
        body = payload.read_bytes()
    except OSError as exc:
        err.write(f"{payload}: cannot read: {exc.strerror}\n")
        return 1
    source = source or detect_source(body)
    try:
        delivery = parse_payload(body, source, sentry_resource)
    except PayloadError as exc:
        err.write(f"{payload}: not a valid {source} payload: {exc}\n")
        return 1
    catalog = PolicyCatalog(
        default_registry(),
        allowed_hosts=settings.targets.http_allowed_hosts,
        flag_file_dirs=settings.targets.flagd_file_dirs,
        allowed_namespaces=settings.kubernetes.k8s_allowed_namespaces,
    )
    scale = SeverityScale(settings.rules.severity_levels)
    try:
        rules = load_rules(
            rules_dir or settings.rules.rules_dir,
            known_actions=catalog.registry.names(),
            severity=scale,
        )
    except RuleSetError as exc:
        err.write(format_errors(exc) + "\n")
        return 1
    index = RuleIndex(rules, scale)
    alerts = delivery.alerts if delivery else ()
    report = {
        "source": source,
        "alerts": [asyncio.run(_explain_alert(a, index, catalog, settings)) for a in alerts],
    }
    if delivery is None:
        report["note"] = "this Sentry resource is acknowledged and ignored"
    out.write(json.dumps(report, indent=2) + "\n" if as_json else _text(report))
    return 0


async def _explain_alert(
    alert: Alert, index: RuleIndex, catalog: PolicyCatalog, settings: Settings
) -> dict[str, Any]:
    gate = Gate(MemoryCoordinator(), dedup_ttl=timedelta(seconds=settings.intake.dedup_ttl_seconds))
    rules: list[dict[str, Any]] = []
    for item in index.explain(alert, every_rule=len(index) <= 50):
        entry: dict[str, Any] = {
            "rule": item.rule.rule.id,
            "location": str(item.rule.location),
            "matched": item.matched,
            "failures": list(item.failures),
        }
        if item.matched:
            try:
                plan = plan_rule(item.rule, alert, catalog, global_dry_run=settings.runs.dry_run)
            except PlanError as exc:
                entry["plan_error"] = str(exc)
            else:
                claimed = await gate.claim(plan.dedup_key)
                decision = claimed or await gate.admit(plan, alert, SystemClock().now())
                entry["plan"] = _plan(plan, catalog)
                entry["gate"] = _gate_text(
                    plan, decision.verdict, decision.detail, may_contain(item.rule, alert)
                )
        rules.append(entry)
    return {
        "alert": alert.name,
        "status": alert.status.value,
        "severity": alert.severity,
        "fingerprint": alert.fingerprint,
        "labels": alert.labels,
        "rules": rules,
    }


def _plan(plan: Plan, catalog: PolicyCatalog) -> dict[str, Any]:
    steps = []
    for step in plan.steps:
        steps.append(
            {
                "id": step.step_id,
                "action": step.action,
                "class": step.action_class.value,
                "if": step.condition,
                "approval": step.approval_required,
                "timeout": step.timeout.total_seconds(),
                "request": catalog.describe(step.action, step.params)
                if step.params is not None
                else {"rendered_at_run_time": step.template},
            }
        )
    return {
        "guard_key": plan.guard_key,
        "idempotency_key": plan.idempotency_key,
        "dry_run": plan.dry_run,
        "for": plan.for_.total_seconds() if plan.for_ else None,
        "cooldown": plan.cooldown.total_seconds() if plan.cooldown else None,
        "budgets": [f"{b.max} per {format_duration(b.per)}" for b in plan.budgets],
        "steps": steps,
    }


def _gate_text(plan: Plan, verdict: Verdict, detail: str, contains: bool) -> list[str]:
    """What would stop or hold this plan on a fresh daemon (no earlier runs)."""
    notes = []
    if verdict is Verdict.DELAY:
        notes.append(f"held by for: ({detail}); runs only if still firing then")
    if plan.dry_run:
        notes.append("dry-run: steps are recorded with their rendered requests, nothing runs")
    if plan.cooldown:
        notes.append(
            f"after a run, cooldown holds {plan.guard_key} for {format_duration(plan.cooldown)}"
        )
    if plan.budgets:
        notes.append(
            "budget: " + ", ".join(f"{b.max} per {format_duration(b.per)}" for b in plan.budgets)
        )
    if not contains and plan.has_containment:
        notes.append("alert is resolved: containment steps would be skipped")
    if any(s.approval_required for s in plan.steps):
        notes.append("approval: steps marked approval wait for an engineer")
    if any(s.action_class is ActionClass.CONTAINMENT for s in plan.steps):
        notes.append("dedup: one run per alert occurrence; repeats are skipped as duplicate")
    return notes or ["nothing would stop it: it runs at once"]


def _text(report: dict[str, Any]) -> str:
    lines = [f"source: {report['source']}"]
    if "note" in report:
        lines.append(report["note"])
    for alert in report["alerts"]:
        lines.append(
            f"\nalert {alert['alert']} [{alert['status']}, severity "
            f"{alert['severity'] or '-'}] fingerprint {alert['fingerprint']}"
        )
        matched = [r for r in alert["rules"] if r["matched"]]
        if not matched:
            lines.append("  no rule matches")
        for rule in alert["rules"]:
            if not rule["matched"]:
                lines.append(
                    f"  - {rule['rule']} ({rule['location']}): no match: "
                    + "; ".join(rule["failures"])
                )
                continue
            lines.append(f"  + {rule['rule']} ({rule['location']}): MATCHES")
            if "plan_error" in rule:
                lines.append(f"      cannot plan: {rule['plan_error']}")
                continue
            plan = rule["plan"]
            lines.append(f"      guard key: {plan['guard_key']}")
            for step in plan["steps"]:
                flags = [step["class"]] + (["approval"] if step["approval"] else [])
                cond = f" if {step['if']}" if step["if"] else ""
                lines.append(
                    f"      step {step['id']}: {step['action']} ({', '.join(flags)}){cond}"
                )
                lines.append(f"        {json.dumps(step['request'], sort_keys=True)}")
            for note in rule["gate"]:
                lines.append(f"      gate: {note}")
    return "\n".join(lines) + "\n"
