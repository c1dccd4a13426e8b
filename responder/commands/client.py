"""`responder approvals ...` and `responder runs ...`: a small HTTP client of a running daemon.

Synchronous (urllib), 10 s timeout per request. The server is `--server`, else
RESPONDER_SERVER, else http://127.0.0.1:8080; the bearer token is RESPONDER_TOKEN (an approver
token to decide; an approver, reader or the webhook token to read). Exit codes: 0 done, 1 the
server refused (problem+json printed as `error: <status> <title>: <detail>`) or could not be
reached, 2 a usage problem (no token, bad server URL).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any, TextIO

from responder.commands.client_tables import (
    approvals_table,
    run_detail,
    runs_table,
    timeline_table,
)

DEFAULT_SERVER = "http://127.0.0.1:8080"
TIMEOUT_SECONDS = 10.0


class ClientError(Exception):
    """A request that did not succeed: the message to print and the exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class ApiClient:
    """Bearer-authenticated JSON requests to one responder server."""

    def __init__(self, server: str, token: str, timeout: float = TIMEOUT_SECONDS) -> None:
        self.server = server.rstrip("/")
        self._token = token
        self._timeout = timeout

    def get(self, path: str, query: Mapping[str, str | None] | None = None) -> Any:
        """GET `path` with the non-empty `query` parameters; the parsed JSON answer."""
        return self._json(self.text(path, query))

    def text(self, path: str, query: Mapping[str, str | None] | None = None) -> str:
        """GET `path`; the answer body as text."""
        params = {k: v for k, v in (query or {}).items() if v}
        suffix = "?" + urllib.parse.urlencode(params) if params else ""
        return self._send(path + suffix)

    def post(self, path: str, body: Mapping[str, Any]) -> Any:
        """POST `body` as JSON to `path`; the parsed JSON answer."""
        return self._json(self._send(path, json.dumps(body).encode()))

    def _json(self, text: str) -> Any:
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ClientError(
                f"error: {self.server} did not answer JSON; is it a responder server?"
            ) from exc

    def _send(self, path: str, data: bytes | None = None) -> str:
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/json, text/markdown",
        }
        if data is not None:
            headers["Content-Type"] = "application/json"
        # the scheme is http(s), checked by connect()
        request = urllib.request.Request(self.server + path, data=data, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                body: bytes = response.read()
        except urllib.error.HTTPError as exc:
            raise ClientError(_problem_message(exc.code, exc.reason, exc.read())) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ClientError(
                f"error: cannot reach {self.server} ({reason}); check the server address "
                "(--server or RESPONDER_SERVER) and that `responder serve` is running there"
            ) from exc
        return body.decode("utf-8", errors="replace")


def approvals_command(
    action: str,
    *,
    approval_id: str | None = None,
    status: str | None = None,
    comment: str | None = None,
    as_json: bool = False,
    server: str | None = None,
    out: TextIO,
    err: TextIO,
    environ: Mapping[str, str] | None = None,
) -> int:
    """`approvals list|approve|reject`; returns the exit code."""
    try:
        client = connect(server, os.environ if environ is None else environ)
        if action == "list":
            body = client.get("/v1/approvals", {"status": status})
            out.write(_dumps(body) if as_json else approvals_table(body.get("approvals", [])))
            return 0
        path = f"/v1/approvals/{urllib.parse.quote(approval_id or '', safe='')}/{action}"
        decided = client.post(path, {"comment": comment} if comment else {})
    except ClientError as exc:
        err.write(f"{exc}\n")
        return exc.code
    if as_json:
        out.write(_dumps(decided))
    else:
        out.write(
            f"{decided.get('state')}: approval {decided.get('approval_id')} "
            f"(run {decided.get('run_id')}, step {decided.get('step_id')}) "
            f"by {decided.get('decided_by')}\n"
        )
    return 0


def runs_command(
    action: str,
    *,
    run_id: str | None = None,
    rule: str | None = None,
    status: str | None = None,
    limit: int | None = None,
    as_json: bool = False,
    markdown: bool = False,
    server: str | None = None,
    out: TextIO,
    err: TextIO,
    environ: Mapping[str, str] | None = None,
) -> int:
    """`runs list|show|timeline`; returns the exit code."""
    try:
        client = connect(server, os.environ if environ is None else environ)
        if action == "list":
            query = {"rule": rule, "status": status, "limit": str(limit) if limit else None}
            body = client.get("/v1/runs", query)
            out.write(_dumps(body) if as_json else runs_table(body.get("runs", [])))
            if body.get("next") and not as_json:
                err.write("more runs exist: raise --limit to see them\n")
            return 0
        path = f"/v1/runs/{urllib.parse.quote(run_id or '', safe='')}"
        if action == "show":
            run = client.get(path)
            out.write(_dumps(run) if as_json else run_detail(run))
        elif markdown:
            out.write(client.text(path + "/timeline", {"format": "markdown"}))
        else:
            timeline = client.get(path + "/timeline")
            out.write(_dumps(timeline) if as_json else timeline_table(timeline["entries"]))
    except ClientError as exc:
        err.write(f"{exc}\n")
        return exc.code
    return 0


def connect(server: str | None, environ: Mapping[str, str]) -> ApiClient:
    """The client for `server` (or RESPONDER_SERVER, or the default) with RESPONDER_TOKEN."""
    url = server or environ.get("RESPONDER_SERVER") or DEFAULT_SERVER
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ClientError(f"error: server {url!r} is not an http(s) URL, e.g. {DEFAULT_SERVER}", 2)
    token = environ.get("RESPONDER_TOKEN", "").strip()
    if not token:
        raise ClientError(
            "error: no token; set RESPONDER_TOKEN to your approver token (one of "
            "RESPONDER_APPROVER_TOKENS on the server) or, to read only, the webhook token",
            2,
        )
    return ApiClient(url, token)


def _problem_message(status: int, reason: str, raw: bytes) -> str:
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict) and "title" in body:
        return f"error: {status} {body['title']}: {body.get('detail', '')}"
    text = " ".join(raw.decode("utf-8", errors="replace").split())[:200]
    return f"error: {status} {reason}: {text}"


def _dumps(body: Any) -> str:
    return json.dumps(body, indent=2, sort_keys=True) + "\n"
