"""`GET /v1/runs/{id}/timeline`: a run's post-incident timeline, as JSON or as Markdown."""

from __future__ import annotations

from aiohttp import web

from responder.core.timelines import build_timeline, render_markdown
from responder.ports.store import AlertLog, AuditLog, RunStore
from responder.web import keys
from responder.web.auth import operator_ok
from responder.web.problems import problem


async def get_timeline(request: web.Request) -> web.StreamResponse:
    """`{"run_id", "entries": [{at, kind, text}], "markdown"}`; `?format=markdown` answers the
    Markdown section alone (text/markdown), ready to paste into a post-mortem."""
    settings = request.app[keys.SETTINGS]
    if not operator_ok(request, settings, request.app[keys.APPROVERS]):
        return problem(
            401,
            "Unauthorized",
            "send Authorization: Bearer <reader or approver token>",
            slug="unauthorized",
        )
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "markdown"):
        return problem(
            400, "Invalid query", f"format is json or markdown, not {fmt!r}", slug="invalid-query"
        )
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
    entries = build_timeline(run, audit, stored.alert.name if stored else None)
    markdown = render_markdown(entries, run)
    if fmt == "markdown":
        return web.Response(text=markdown, content_type="text/markdown", charset="utf-8")
    return web.json_response(
        {
            "run_id": run.run_id,
            "entries": [e.model_dump(mode="json") for e in entries],
            "markdown": markdown,
        }
    )
