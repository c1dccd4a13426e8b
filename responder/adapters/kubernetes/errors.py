"""Kubernetes API errors translated into responder's, saying what to do next.

5xx, 429, timeouts and refused connections -> TemporaryError (the engine retries); 409 ->
TemporaryError (the object changed since it was read); 403 -> PermanentError naming the RBAC
verb, resource and API group to grant; 401, 404, 400, 422 -> PermanentError. The API server's
own `Status.message` is quoted, shortened.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import urllib3
from kubernetes.client import ApiException

from responder.errors import PermanentError, TemporaryError

_RBAC_HINT = "grant it in the Role bound to responder's ServiceAccount (docs/actions/kubernetes.md)"


@dataclass(frozen=True)
class Op:
    """One API call, for error messages: the RBAC verb and resource it needs."""

    verb: str
    resource: str  # e.g. "deployments", "deployments/scale", "pods/log"
    namespace: str
    name: str | None = None
    group: str = ""  # "" is the core API group

    def __str__(self) -> str:
        target = f"{self.namespace}/{self.name}" if self.name else f"namespace {self.namespace}"
        return f"{self.verb} {self.resource} {target}"


def unreachable(op: Op, exc: BaseException, seconds: float) -> TemporaryError:
    """A transport failure: a timeout, or no connection to the API server."""
    refused = isinstance(exc, urllib3.exceptions.NewConnectionError)  # a ConnectTimeoutError too
    if isinstance(exc, TimeoutError | urllib3.exceptions.TimeoutError) and not refused:
        return TemporaryError(
            f"Kubernetes API: {op} did not answer within {seconds:g} s "
            "(RESPONDER_K8S_REQUEST_TIMEOUT_SECONDS); retrying",
            delay=1.0,
        )
    return TemporaryError(
        f"Kubernetes API: {op}: cannot reach the API server ({type(exc).__name__}: "
        f"{str(exc)[:200]}); check the server address and network",
        delay=1.0,
    )


def _server_message(exc: ApiException) -> str:
    """The `message` of the Status body the API server sent, shortened."""
    text = exc.body if isinstance(exc.body, str) else ""
    try:
        document = json.loads(text) if text else None
    except ValueError:
        document = None
    message = document.get("message") if isinstance(document, dict) else None
    shown = str(message) if message else (text or str(exc.reason or ""))
    return " ".join(shown.split())[:400]


def translate(op: Op, exc: ApiException) -> Exception:
    """Our error for an API server answer that is not 2xx (see the module docstring)."""
    status = exc.status or 0
    said = _server_message(exc)
    where = f"Kubernetes API: {op}"
    if status == 403:
        group = f'apiGroup "{op.group}"' if op.group else 'the core apiGroup ""'
        return PermanentError(
            f'{where} is forbidden (403): responder needs RBAC verb "{op.verb}" on resource '
            f'"{op.resource}" ({group}) in namespace "{op.namespace}"; {_RBAC_HINT}. '
            f"Server said: {said}"
        )
    if status == 409:
        return TemporaryError(
            f"{where}: conflict (409): the object changed since it was read (stale "
            f"resourceVersion or uid precondition); read it again and retry. Server said: {said}",
            delay=1.0,
        )
    if status == 429 or status >= 500:
        retry_after = str((exc.headers or {}).get("Retry-After") or "")
        delay = min(float(retry_after), 30.0) if retry_after.isdigit() else 1.0
        return TemporaryError(f"{where}: the API server answered {status}: {said}", delay=delay)
    if status == 404:
        return PermanentError(f"{where}: not found (404): {said}")
    if status == 401:
        return PermanentError(
            f"{where}: unauthorized (401): the API server rejected responder's credentials; "
            "check RESPONDER_KUBECONFIG or the ServiceAccount token"
        )
    return PermanentError(f"{where}: rejected ({status or 'no status'}): {said}")
