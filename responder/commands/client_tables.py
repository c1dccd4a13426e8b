"""Plain-text rendering of the operator API's answers: aligned tables for a terminal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns aligned with two spaces between them; the last column is not padded."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = []
    for row in (headers, *rows):
        cells = [cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines) + "\n"


def when(value: Any) -> str:
    """An ISO timestamp from the API as `YYYY-MM-DD HH:MM:SS` UTC; `-` when absent."""
    if not isinstance(value, str) or not value:
        return "-"
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return value
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.strftime("%Y-%m-%d %H:%M:%S")


def approvals_table(approvals: Sequence[Mapping[str, Any]]) -> str:
    """`GET /v1/approvals` as a table."""
    if not approvals:
        return "no approvals\n"
    rows = [
        [
            str(a.get("approval_id", "")),
            str(a.get("state", "")),
            str(a.get("rule_id", "")),
            str(a.get("step_id", "")),
            str(a.get("action", "")),
            when(a.get("requested_at")),
            when(a.get("expires_at")),
            str(a.get("decided_by") or "-"),
        ]
        for a in approvals
    ]
    headers = ["ID", "STATE", "RULE", "STEP", "ACTION", "REQUESTED (UTC)", "EXPIRES (UTC)", "BY"]
    return table(headers, rows)


def runs_table(runs: Sequence[Mapping[str, Any]]) -> str:
    """`GET /v1/runs` as a table; STEPS counts the succeeded steps of all steps."""
    if not runs:
        return "no runs\n"
    rows = [
        [
            str(r.get("run_id", "")),
            str(r.get("rule_id", "")),
            str(r.get("state", "")),
            str(r.get("source", "")),
            when(r.get("created_at")),
            _step_count(r.get("steps")),
            str(r.get("reason") or ""),
        ]
        for r in runs
    ]
    return table(["RUN ID", "RULE", "STATE", "SOURCE", "CREATED (UTC)", "STEPS OK", "REASON"], rows)


def run_detail(run: Mapping[str, Any]) -> str:
    """`GET /v1/runs/{id}`: the run's fields, its steps, then its audit trail."""
    fields = [
        ("run", run.get("run_id")),
        ("rule", run.get("rule_id")),
        (
            "state",
            run.get("state") if not run.get("reason") else f"{run['state']} ({run['reason']})",
        ),
        ("source", run.get("source")),
        ("alert", f"#{run.get('alert_id')} {run.get('alert_identity', '')}".strip()),
        ("created", when(run.get("created_at")) + " UTC"),
        ("updated", when(run.get("updated_at")) + " UTC"),
        ("dry run", "yes" if run.get("dry_run") else "no"),
    ]
    out = "".join(f"{name + ':':<9} {value}\n" for name, value in fields)
    steps = run.get("steps") or []
    step_rows = [
        [
            str(s.get("step_id", "")),
            str(s.get("action", "")),
            str(s.get("state", "")),
            str(s.get("attempts", 0)),
            when(s.get("finished_at")),
            _one_line(str(s.get("reason") or s.get("error") or "")),
        ]
        for s in steps
    ]
    out += "\nsteps:\n" + table(["STEP", "ACTION", "STATE", "TRIES", "FINISHED", "NOTE"], step_rows)
    audit = run.get("audit") or []
    audit_rows = [
        [
            when(e.get("at")),
            str(e.get("kind", "")),
            str(e.get("actor", "")),
            str(e.get("step_id") or "-"),
            _one_line(str(e.get("reason") or "")),
        ]
        for e in audit
    ]
    if audit_rows:
        out += "\naudit:\n" + table(["AT (UTC)", "KIND", "ACTOR", "STEP", "REASON"], audit_rows)
    return out


def timeline_table(entries: Sequence[Mapping[str, Any]]) -> str:
    """`GET /v1/runs/{id}/timeline` entries as a table."""
    rows = [[when(e.get("at")), str(e.get("kind", "")), str(e.get("text", ""))] for e in entries]
    return table(["AT (UTC)", "KIND", "WHAT"], rows)


def _step_count(steps: Any) -> str:
    if not isinstance(steps, list):
        return "-"
    ok = sum(1 for s in steps if isinstance(s, dict) and s.get("state") == "succeeded")
    return f"{ok}/{len(steps)}"


def _one_line(text: str, limit: int = 80) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"
