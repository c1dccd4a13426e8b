"""Pure: the message sent to notify sinks when a step waits for approval, per sink action."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from responder.models.approvals import Approval
from responder.models.runs import RunRecord, StepState

MAX_EVIDENCE = 8


def evidence(run: RunRecord, step_id: str) -> list[str]:
    """One line per step that ran before the waiting one: what the diagnostics found."""
    lines: list[str] = []
    for step in run.steps:
        if step.step_id == step_id:
            break
        if step.state in (StepState.SUCCEEDED, StepState.FAILED):
            found = (step.output or {}).get("message") or (step.output or {}).get("status")
            detail = f": {found}" if found is not None else ""
            lines.append(f"{step.step_id} ({step.action}) {step.state.value}{detail}")
    return lines[:MAX_EVIDENCE]


def notice_text(approval: Approval, run: RunRecord, approve_url: str) -> tuple[str, str]:
    """(title, body) in plain text: what will run, why, the evidence, expiry, where to approve."""
    why = "the storm brake is on" if approval.reason == "storm_brake" else "the rule requires it"
    title = f"Approval needed: {approval.rule_id} / {approval.step_id}"
    lines = [
        f"{approval.action} waits for approval ({why}).",
        f"Expires {approval.expires_at.isoformat()}. Approve: {approve_url}",
    ]
    lines += [f"- {line}" for line in evidence(run, approval.step_id)]
    return title, "\n".join(lines)


def sink_params(
    action: str, configured: Mapping[str, Any], approval: Approval, run: RunRecord, approve_url: str
) -> dict[str, Any]:
    """The sink's configured params plus the message, in that action's own parameter names."""
    title, body = notice_text(approval, run, approve_url)
    params = dict(configured)
    if action == "notify.slack":
        params.setdefault("text", f"{title}\n{body}")
        params.setdefault("title", title)
        params.setdefault(
            "fields",
            {
                "rule": approval.rule_id,
                "step": approval.step_id,
                "action": approval.action,
                "expires": approval.expires_at.isoformat(),
            },
        )
        if approve_url.startswith(("http://", "https://")):
            params.setdefault("link", approve_url)
    elif action == "notify.pagerduty":
        params.setdefault("event_action", "trigger")
        params.setdefault("summary", f"{title}: {approval.action}"[:1024])
        params.setdefault("severity", "warning")
        params.setdefault("source", "responder")
        params.setdefault("dedup_key", f"responder:approval:{approval.approval_id}")
        params.setdefault("custom_details", {"body": body, "approve_url": approve_url})
    else:  # notify.webhook and anything JSON-shaped
        params.setdefault(
            "json",
            {
                "type": "approval_requested",
                "title": title,
                "text": body,
                "approval": approval.model_dump(mode="json"),
                "run_id": run.run_id,
                "approve_url": approve_url,
                "evidence": evidence(run, approval.step_id),
            },
        )
    return params
