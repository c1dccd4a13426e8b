"""The aiohttp application factory: routes, middleware and resources in order."""

from __future__ import annotations

from aiohttp import web

from responder.actions.base import ActionRegistry
from responder.actions.catalog import PolicyCatalog
from responder.actions.shipped import default_registry
from responder.adapters.clock import SystemClock
from responder.core.severities import SeverityScale
from responder.engine.rulebook import RuleBook
from responder.metrics import Metrics
from responder.ports.clock import Clock
from responder.settings import Settings
from responder.web import approvals_api, keys, probes, rules_api, runs_api, webhooks
from responder.web.identities import load_approvers, load_readers
from responder.web.openapi import openapi
from responder.web.problems import problem_middleware
from responder.web.received_log import ReceivedLog
from responder.web.rules_reload import load_snapshot, reload_ctx
from responder.web.services import coordinator_ctx, engine_ctx, http_ctx, kube_ctx, store_ctx
from responder.web.timeline_api import get_timeline
from responder.web.ui import page as ui_page


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    metrics: Metrics | None = None,
    registry: ActionRegistry | None = None,
) -> web.Application:
    """Build the app. Rules are loaded here, so an invalid rule set fails before serving.

    Raises RuleSetError when the rules directory does not load, ValueError when the approver
    tokens are malformed.
    """
    app = web.Application(
        client_max_size=settings.intake.max_body_bytes, middlewares=[problem_middleware]
    )
    clock = clock or SystemClock()
    catalog = PolicyCatalog(
        registry or default_registry(),
        allowed_hosts=settings.targets.http_allowed_hosts,
        flag_file_dirs=settings.targets.flagd_file_dirs,
        allowed_namespaces=settings.kubernetes.k8s_allowed_namespaces,
    )
    snapshot = load_snapshot(
        settings.rules.rules_dir,
        catalog.registry.names(),
        SeverityScale(settings.rules.severity_levels),
        clock,
    )
    app[keys.SETTINGS] = settings
    app[keys.CLOCK] = clock
    app[keys.METRICS] = metrics or Metrics.create()
    app[keys.CATALOG] = catalog
    app[keys.RULEBOOK] = RuleBook(snapshot)
    app[keys.APPROVERS] = load_approvers(settings)
    app[keys.READERS] = load_readers(settings)
    app[keys.RECEIVED_LOG] = ReceivedLog()
    app.on_cleanup.append(_flush_received_log)
    app.cleanup_ctx.extend([store_ctx, coordinator_ctx, http_ctx, kube_ctx, engine_ctx, reload_ctx])
    app.router.add_post("/v1/webhooks/alertmanager", webhooks.alertmanager)
    app.router.add_post("/v1/webhooks/grafana", webhooks.grafana)
    app.router.add_post("/v1/webhooks/sentry", webhooks.sentry)
    app.router.add_get("/v1/runs", runs_api.list_runs)
    app.router.add_get("/v1/runs/{run_id}", runs_api.get_run)
    app.router.add_get("/v1/runs/{run_id}/timeline", get_timeline)
    app.router.add_get("/v1/rules", rules_api.list_rules)
    app.router.add_get("/v1/approvals", approvals_api.list_approvals)
    app.router.add_post("/v1/approvals/{approval_id}/approve", approvals_api.approve)
    app.router.add_post("/v1/approvals/{approval_id}/reject", approvals_api.reject)
    app.router.add_get("/healthz", probes.healthz)
    app.router.add_get("/readyz", probes.readyz)
    app.router.add_get("/metrics", probes.metrics)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/ui", ui_page)
    return app


async def _flush_received_log(app: web.Application) -> None:
    """Write the `alerts_unmatched` summaries still waiting for their interval."""
    app[keys.RECEIVED_LOG].flush()
