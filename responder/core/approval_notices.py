"""Pure: the messages sent to notify sinks when a step waits for approval, and when that
approval ends (decided, expired, cancelled), per sink action."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from responder.models.approvals import Approval, ApprovalState
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


_WHY = {
    "storm_brake": "the storm brake is on",
    # a takeover could not settle a step interrupted mid-call (core/takeovers)
    "outcome_unknown": "its replica stopped during the call, so it may already have acted and "
    "nothing could read its effect back: approve to run it again, reject to leave it",
}


def notice_text(approval: Approval, run: RunRecord, approve_url: str) -> tuple[str, str]:
    """(title, body) in plain text: what will run, why, the evidence, expiry, where to approve."""
    why = _WHY.get(approval.reason, "the rule requires it")
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


_ENDINGS = {
    ApprovalState.APPROVED: "approved",
    ApprovalState.REJECTED: "rejected",
    ApprovalState.EXPIRED: "expired",
    ApprovalState.CANCELLED: "cancelled",
}
_FOLLOW_UP_TYPE = {
    ApprovalState.APPROVED: "approval_granted",
    ApprovalState.REJECTED: "approval_rejected",
    ApprovalState.EXPIRED: "approval_expired",
    ApprovalState.CANCELLED: "approval_cancelled",
}


def follow_up_text(approval: Approval, run_url: str) -> tuple[str, str]:
    """(title, body) of the update sent when the approval ended: who decided, or that it
    expired or was cancelled, and where the run is read. The request's notice is now stale."""
    ending = _ENDINGS.get(approval.state, approval.state.value)
    title = f"Approval {ending}: {approval.rule_id} / {approval.step_id}"
    if approval.state in (ApprovalState.APPROVED, ApprovalState.REJECTED):
        comment = f': "{approval.comment}"' if approval.comment else ""
        what = f"{approval.action} was {ending} by {approval.decided_by or '?'}{comment}."
    elif approval.state is ApprovalState.EXPIRED:
        what = f"{approval.action} expired without a decision; the step is skipped."
    elif approval.state is ApprovalState.CANCELLED:
        why = " (the alert resolved)" if approval.comment == "alert_resolved" else ""
        what = f"{approval.action} no longer needs a decision: the run was cancelled{why}."
    else:
        what = f"{approval.action} is {ending}."
    return title, f"{what}\nNo decision is needed on the earlier request. Run: {run_url}"


def follow_up_params(
    action: str, configured: Mapping[str, Any], approval: Approval, run: RunRecord, run_url: str
) -> dict[str, Any]:
    """The sink's configured params plus the follow-up message, in that action's names."""
    title, body = follow_up_text(approval, run_url)
    params = dict(configured)
    if action == "notify.slack":
        params.setdefault("text", f"{title}\n{body}")
        params.setdefault("title", title)
        params.setdefault(
            "fields",
            {
                "rule": approval.rule_id,
                "step": approval.step_id,
                "state": approval.state.value,
                "by": approval.decided_by or "",
            },
        )
        if run_url.startswith(("http://", "https://")):
            params.setdefault("link", run_url)
    elif action == "notify.pagerduty":
        # the same dedup_key as the request: PagerDuty closes the alert that asked
        params["event_action"] = "resolve"
        params.setdefault("dedup_key", f"responder:approval:{approval.approval_id}")
    else:  # notify.webhook and anything JSON-shaped
        params.setdefault(
            "json",
            {
                "type": _FOLLOW_UP_TYPE.get(approval.state, f"approval_{approval.state.value}"),
                "title": title,
                "text": body,
                "approval": approval.model_dump(mode="json"),
                "run_id": run.run_id,
                "run_url": run_url,
            },
        )
    return params
