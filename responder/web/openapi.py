"""`GET /openapi.json`: the OpenAPI 3.1 description of every route the app registers.

Operations are described here; bodies by the pydantic models of `response_models` (and the
request models of the handlers), so the schemas follow the models as they change.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from responder.models.alerts import Source
from responder.models.approvals import ApprovalState
from responder.models.runs import RunState
from responder.web.approvals_api import DecisionBody
from responder.web.response_models import RESPONSE_MODELS

Json = dict[str, Any]
REF = "#/components/schemas/{model}"
_STR: Json = {"type": "string"}
_READERS: list[Json] = [{"readerToken": []}, {"approverToken": []}]
_WEBHOOK: list[Json] = [{"webhookToken": []}, {"webhookBasic": []}]
_SENTRY: list[Json] = [{"sentrySignature": []}, {"webhookToken": []}, {"sentryLegacyToken": []}]


def _body(schema: Json | str, description: str, media: str = "application/json") -> Json:
    """A response: `schema` is a component name or an inline schema."""
    inline = {"$ref": REF.format(model=schema)} if isinstance(schema, str) else schema
    return {"description": description, "content": {media: {"schema": inline}}}


def _problems(**statuses: str) -> Json:
    """Problem+json responses, keyed `s401="why"`."""
    return {
        key[1:]: _body("Problem", why, "application/problem+json") for key, why in statuses.items()
    }


def _op(summary: str, security: list[Json], ok: Json, *params: Json, **problems: str) -> Json:
    status = "202" if summary.startswith("Webhook") else "200"
    op = {
        "summary": summary,
        "security": security,
        "responses": {status: ok, **_problems(**problems)},
    }
    if params:
        op["parameters"] = list(params)
    return op


def _query(name: str, description: str, schema: Json | None = None) -> Json:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or _STR,
    }


def _path(name: str) -> Json:
    return {"name": name, "in": "path", "required": True, "schema": _STR}


def _enum(values: Any) -> Json:
    """A filter naming one of `values`; empty means no filter."""
    return {"type": "string", "enum": ["", *(v.value for v in values)]}


def _webhook(sender: str, security: list[Json]) -> Json:
    op = _op(
        f"Webhook from {sender}",
        security,
        _body("WebhookAck", "written down; 202 only then"),
        s400="malformed JSON or a schema error naming the field",
        s401="bad credentials",
        s413="body over RESPONDER_MAX_BODY_BYTES",
        s415="not JSON",
        s503="queue full, store unavailable or draining; retry",
    )
    op["responses"]["503"]["headers"] = {"Retry-After": {"required": True, "schema": _STR}}
    op["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "description": f"{sender}'s own payload"}
            }
        },
    }
    return op


def _decision(verb: str) -> Json:
    op = _op(
        f"{verb} a pending step",
        [{"approverToken": []}],
        _body("Approval", "decided"),
        _path("approval_id"),
        s400='the body is not {"comment": ...}',
        s401="not an approver token (the webhook token cannot decide)",
        s403="this approver may not decide this step",
        s404="no such approval",
        s409="already decided or expired; `approval` is its current state",
        s413="body over RESPONDER_MAX_BODY_BYTES",
    )
    op["requestBody"] = {
        "required": False,
        "content": {"application/json": {"schema": {"$ref": REF.format(model="DecisionBody")}}},
    }
    return op


def _operations() -> dict[tuple[str, str], Json]:
    since = {"type": "string", "anyOf": [{"format": "date-time"}, {"maxLength": 0}]}
    limit = {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}
    timeline = _body("Timeline", "the timeline")
    timeline["content"]["text/markdown"] = {"schema": _STR}
    fmt = {"type": "string", "enum": ["json", "markdown"], "default": "json"}
    return {
        ("post", "/v1/webhooks/alertmanager"): _webhook("Alertmanager (v4)", _WEBHOOK),
        ("post", "/v1/webhooks/grafana"): _webhook("Grafana alerting", _WEBHOOK),
        ("post", "/v1/webhooks/sentry"): _webhook("Sentry", _SENTRY),
        ("get", "/v1/runs"): _op(
            "Runs, newest first",
            _READERS,
            _body("RunsPage", "a page of runs"),
            _query("rule", "rule id"),
            _query("status", "run state", _enum(RunState)),
            _query("source", "alert source", _enum(Source)),
            _query("fingerprint", "alert"),
            _query("since", "ISO-8601 time", since),
            _query("limit", "page size", limit),
            _query("before", "the `next` of the previous page"),
            s400="invalid filter",
            s401="no reader token",
        ),
        ("get", "/v1/runs/{run_id}"): _op(
            "One run: steps, outputs, audit trail",
            _READERS,
            _body("RunDetail", "the run"),
            _path("run_id"),
            s401="no reader token",
            s404="no such run",
        ),
        ("get", "/v1/runs/{run_id}/timeline"): _op(
            "A run's timeline; format=markdown answers the Markdown alone",
            _READERS,
            timeline,
            _path("run_id"),
            _query("format", "json or markdown", fmt),
            s400="unknown format",
            s401="no reader token",
            s404="no such run",
        ),
        ("get", "/v1/rules"): _op(
            "The active rule set", _READERS, _body("RuleSet", "rules"), s401="no reader token"
        ),
        ("get", "/v1/approvals"): _op(
            "Approvals, newest first",
            _READERS,
            _body("ApprovalsPage", "approvals"),
            _query("status", "approval state", _enum(ApprovalState)),
            _query("limit", "page size", {**limit, "default": 100}),
            s400="invalid filter",
            s401="no reader token",
        ),
        ("post", "/v1/approvals/{approval_id}/approve"): _decision("Approve"),
        ("post", "/v1/approvals/{approval_id}/reject"): _decision("Reject"),
        ("get", "/healthz"): _op("Liveness", [], _body("Health", "the loop answers")),
        ("get", "/readyz"): {
            **_op("Readiness", [], _body("Readiness", "ready")),
            "responses": {
                "200": _body("Readiness", "ready"),
                "503": _body("Readiness", "not ready"),
            },
        },
        ("get", "/metrics"): _op("Prometheus metrics", [], _body(_STR, "text", "text/plain")),
        ("get", "/ui"): _op("Operator page", [], _body(_STR, "the page", "text/html")),
        ("get", "/openapi.json"): _op("This document", [], _body({"type": "object"}, "3.1")),
    }


def _components() -> Json:
    modes: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        (m, "serialization") for m in RESPONSE_MODELS
    ]
    _, top = models_json_schema([*modes, (DecisionBody, "validation")], ref_template=REF)
    bearer = {"type": "http", "scheme": "bearer"}
    return {
        "schemas": top["$defs"],
        "securitySchemes": {
            "webhookToken": {**bearer, "description": "RESPONDER_WEBHOOK_TOKEN"},
            "webhookBasic": {
                "type": "http",
                "scheme": "basic",
                "description": "any user, RESPONDER_WEBHOOK_TOKEN as the password",
            },
            "readerToken": {**bearer, "description": "a RESPONDER_READER_TOKENS token"},
            "approverToken": {**bearer, "description": "a RESPONDER_APPROVER_TOKENS token"},
            "sentrySignature": {
                "type": "apiKey",
                "in": "header",
                "name": "Sentry-Hook-Signature",
                "description": "hex HMAC-SHA256 of the body, client secret",
            },
            "sentryLegacyToken": {
                "type": "apiKey",
                "in": "query",
                "name": "token",
                "description": "RESPONDER_WEBHOOK_TOKEN (legacy plugin)",
            },
        },
    }


def build_document(routes: frozenset[tuple[str, str]]) -> Json:
    """The document for these (method, path) routes: only those, each as described here.

    A route without a description is left out, so a test comparing the document with the
    router finds it.
    """
    paths: dict[str, Json] = {}
    for (method, path), operation in _operations().items():
        if (method, path) in routes:
            paths.setdefault(path, {})[method] = operation
    info = {"title": "responder", "version": "1", "description": "Alerts in, audited runs out."}
    return {
        "openapi": "3.1.0",
        "info": info,
        "paths": dict(sorted(paths.items())),
        "components": _components(),
    }


def app_routes(app: web.Application) -> frozenset[tuple[str, str]]:
    """The (lower-case method, path template) of every route of `app`, HEAD left out."""
    return frozenset(
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    )


@functools.lru_cache(maxsize=8)
def _rendered(routes: frozenset[tuple[str, str]]) -> bytes:
    return json.dumps(build_document(routes)).encode()


async def openapi(request: web.Request) -> web.StreamResponse:
    """The OpenAPI document of this app (no authentication), built once per route set."""
    return web.Response(body=_rendered(app_routes(request.app)), content_type="application/json")
