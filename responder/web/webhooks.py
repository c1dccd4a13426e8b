"""`POST /v1/webhooks/{alertmanager,grafana,sentry}`: authenticate, parse, record, 202."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import structlog
from aiohttp import web

from responder.core.normalising.alertmanager import parse_alertmanager, parse_grafana
from responder.core.normalising.sentry import parse_sentry
from responder.engine.intake import DrainingError, QueueFullError
from responder.errors import CoordinationUnavailableError, PayloadError, StoreUnavailableError
from responder.models.alerts import Delivery, Source
from responder.web import keys
from responder.web.auth import sentry_ok, token_ok
from responder.web.problems import problem

log = structlog.get_logger("responder.web")

SENTRY_REPLAY_TTL = timedelta(hours=24)
_JSON_TYPES = ("application/json", "text/json")


async def alertmanager(request: web.Request) -> web.StreamResponse:
    """Alertmanager webhook (payload version 4); bearer or basic token."""
    return await _receive(request, Source.ALERTMANAGER, parse_alertmanager)


async def grafana(request: web.Request) -> web.StreamResponse:
    """Grafana unified alerting webhook; bearer or basic token."""
    return await _receive(request, Source.GRAFANA, parse_grafana)


async def sentry(request: web.Request) -> web.StreamResponse:
    """Sentry integration-platform webhook, verified by `Sentry-Hook-Signature`."""
    settings = request.app[keys.SETTINGS]
    metrics = request.app[keys.METRICS]
    rejected = _media_type_problem(request, Source.SENTRY)
    if rejected is not None:
        return rejected
    body = await request.read()
    if not sentry_ok(request, body, settings):
        return _unauthorized(
            request,
            Source.SENTRY,
            "a valid Sentry-Hook-Signature (HMAC-SHA256 "
            "of the body with RESPONDER_SENTRY_CLIENT_SECRET)",
        )
    request_id = request.headers.get("Request-ID")
    try:
        delivery = parse_sentry(
            body, resource=request.headers.get("Sentry-Hook-Resource"), request_id=request_id
        )
    except PayloadError as exc:
        return _bad_payload(request, Source.SENTRY, exc)
    if delivery is None:
        metrics.alerts_received.labels("sentry", "ignored").inc()
        return web.json_response({"status": "ignored", "alerts": 0}, status=202)
    if request_id:
        try:
            first = await request.app[keys.COORDINATOR].claim(
                f"delivery:sentry:{request_id}", SENTRY_REPLAY_TTL
            )
        except CoordinationUnavailableError:
            first = True  # the alert-identity dedup in the gate still absorbs a replay
        if not first:
            metrics.alerts_received.labels("sentry", "duplicate").inc(len(delivery.alerts))
            return web.json_response({"status": "duplicate", "alerts": 0}, status=202)
    return await _record(request, delivery)


async def _receive(
    request: web.Request, source: Source, parse: Callable[[bytes], Delivery]
) -> web.StreamResponse:
    settings = request.app[keys.SETTINGS]
    if not token_ok(request, settings):
        return _unauthorized(request, source, "Authorization: Bearer <RESPONDER_WEBHOOK_TOKEN>")
    rejected = _media_type_problem(request, source)
    if rejected is not None:
        return rejected
    try:  # a full queue refuses before the body is parsed (the CPU goes to accepted alerts)
        request.app[keys.INTAKE].refuse_early()
    except (QueueFullError, DrainingError) as exc:
        return _refusal(request, source.value, exc)
    body = await request.read()
    try:
        delivery = parse(body)
    except PayloadError as exc:
        return _bad_payload(request, source, exc)
    return await _record(request, delivery)


async def _record(request: web.Request, delivery: Delivery) -> web.StreamResponse:
    app = request.app
    metrics = app[keys.METRICS]
    source = delivery.source.value
    started = time.perf_counter()
    try:
        accepted = await app[keys.INTAKE].accept(delivery)
    except (QueueFullError, DrainingError) as exc:
        return _refusal(request, source, exc)
    except StoreUnavailableError as exc:
        metrics.webhook_rejected.labels(source, "503").inc()
        log.error("store_unavailable", source=source, error=str(exc))
        return problem(
            503,
            "Store unavailable",
            "the alerts were not recorded; retry later",
            slug="store-unavailable",
            headers={"Retry-After": "5"},
        )
    write_duration, accepted_alerts = metrics.accepted(source)
    write_duration.observe(time.perf_counter() - started)
    stored = accepted.stored
    accepted_alerts.inc(len(stored))
    if delivery.truncated_alerts:
        metrics.alerts_truncated.labels(source).inc(delivery.truncated_alerts)
    app[keys.RECEIVED_LOG].accepted(source, accepted.stored, accepted.queued)
    # the 202's JSON is written directly: json.dumps of the dict was 3-4% of a delivery's CPU
    ids = ", ".join(str(s.alert_id) for s in stored)
    return web.Response(
        text=f'{{"status": "accepted", "alerts": {len(stored)}, "ids": [{ids}], '
        f'"truncated_alerts": {int(delivery.truncated_alerts)}}}',
        status=202,
        content_type="application/json",
    )


def _refusal(
    request: web.Request, source: str, exc: QueueFullError | DrainingError
) -> web.Response:
    """503 with Retry-After: the queue is full, or the daemon is shutting down."""
    request.app[keys.METRICS].webhook_rejected.labels(source, "503").inc()
    if isinstance(exc, QueueFullError):
        return problem(
            503,
            "Queue full",
            str(exc),
            slug="queue-full",
            headers={"Retry-After": str(exc.retry_after)},
        )
    return problem(503, "Shutting down", str(exc), slug="draining", headers={"Retry-After": "1"})


def _media_type_problem(request: web.Request, source: Source) -> web.Response | None:
    if request.content_type in _JSON_TYPES or request.content_type.endswith("+json"):
        return None
    request.app[keys.METRICS].webhook_rejected.labels(source.value, "415").inc()
    return problem(
        415,
        "Unsupported media type",
        f"send Content-Type: application/json (got {request.content_type!r})",
        slug="unsupported-media-type",
    )


def _unauthorized(request: web.Request, source: Source, expected: str) -> web.Response:
    request.app[keys.METRICS].webhook_rejected.labels(source.value, "401").inc()
    log.warning("webhook_unauthorized", source=source.value, remote=request.remote)
    return problem(
        401,
        "Unauthorized",
        f"missing or wrong credentials; expected {expected}",
        slug="unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="responder"'},
    )


def _bad_payload(request: web.Request, source: Source, exc: PayloadError) -> web.Response:
    request.app[keys.METRICS].webhook_rejected.labels(source.value, "400").inc()
    request.app[keys.METRICS].alerts_received.labels(source.value, "rejected").inc()
    log.warning("webhook_rejected", source=source.value, field=exc.field, error=str(exc))
    return problem(400, "Invalid payload", str(exc), slug="invalid-payload", field=exc.field)
