"""`GET /v1/runs` and `GET /v1/runs/{id}`: what the automation did, with its audit trail."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import ValidationError

from responder.models.alerts import Source
from responder.models.runs import RunQuery, RunState
from responder.ports.store import AlertLog, AuditLog, RunStore
from responder.web import keys
from responder.web.auth import operator_ok
from responder.web.problems import problem


async def list_runs(request: web.Request) -> web.StreamResponse:
    """Runs newest first; filters `rule`, `status`, `source`, `fingerprint`, `since` (ISO
    time); cursor pagination with `limit` and `before` (the `next` of the previous page)."""
    if not operator_ok(request, request.app[keys.SETTINGS], request.app[keys.APPROVERS]):
        return _unauthorized()
    q = request.query
    try:
        query = RunQuery(
            rule_id=q.get("rule") or None,
            state=RunState(q["status"]) if q.get("status") else None,
            source=Source(q["source"]) if q.get("source") else None,
            fingerprint=q.get("fingerprint") or None,
            since=datetime.fromisoformat(q["since"]) if q.get("since") else None,
            limit=int(q.get("limit", "50")),
            before=q.get("before") or None,
        )
    except (ValueError, ValidationError) as exc:
        states = ", ".join(s.value for s in RunState)
        return problem(
            400,
            "Invalid query",
            f"{exc}; status is one of {states}, since is ISO-8601",
            slug="invalid-query",
        )
    run_store: RunStore = request.app[keys.STORE]
    runs = await run_store.list_runs(query)
    body = {
        "runs": [r.model_dump(mode="json") for r in runs],
        "next": runs[-1].run_id if len(runs) == query.limit else None,
    }
    return web.json_response(body)


async def get_run(request: web.Request) -> web.StreamResponse:
    """One run: the alert, each step (rendered params, output, timings), the audit trail."""
    if not operator_ok(request, request.app[keys.SETTINGS], request.app[keys.APPROVERS]):
        return _unauthorized()
    run_store: RunStore = request.app[keys.STORE]
    audit_log: AuditLog = request.app[keys.STORE]
    alert_log: AlertLog = request.app[keys.STORE]
    run_id = request.match_info["run_id"]
    run = await run_store.get_run(run_id)
    if run is None:
        return problem(
            404, "Run not found", f"no run {run_id!r}; list runs at /v1/runs", slug="run-not-found"
        )
    audit = await audit_log.audit_for_run(run_id)
    stored = await alert_log.get_alert(run.alert_id)
    body = run.model_dump(mode="json")
    body["alert"] = stored.alert.model_dump(mode="json") if stored else None
    body["audit"] = [e.model_dump(mode="json") for e in audit]
    return web.json_response(body)


def _unauthorized() -> web.Response:
    return problem(
        401,
        "Unauthorized",
        "send Authorization: Bearer <reader or approver token>",
        slug="unauthorized",
    )
