"""Request authentication: bearer/basic tokens for Alertmanager and Grafana, Sentry signatures."""

from __future__ import annotations

import base64
import binascii
import hmac

from aiohttp import web

from responder.core.signatures import bearer_matches, verify_sentry_signature
from responder.settings import Settings
from responder.web import keys
from responder.web.identities import Approver, authenticate, proxy_identity


def token_ok(request: web.Request, settings: Settings) -> bool:
    """Whether the request carries the webhook token.

    Accepted forms: `Authorization: Bearer <token>` (Alertmanager `authorization`, Grafana
    `authorization_credentials`) or HTTP Basic with the token as the password and any user
    name (Alertmanager `basic_auth`). With RESPONDER_INSECURE_NO_AUTH everything passes.
    """
    if settings.access.insecure_no_auth:
        return True
    if settings.access.webhook_token is None:
        return False
    token = settings.access.webhook_token.get_secret_value()
    header = request.headers.get("Authorization")
    if bearer_matches(header, token):
        return True
    return _basic_password(header) is not None and hmac.compare_digest(
        (_basic_password(header) or "").encode(), token.encode()
    )


def operator_ok(
    request: web.Request, settings: Settings, approvers: tuple[Approver, ...] = ()
) -> bool:
    """Read access to the operator API: a reader or approver token, or the trusted proxy
    identity. The webhook token never reads: it is shared with every alert sender, and the
    operator API shows rendered steps and diagnostic evidence."""
    return (
        settings.access.insecure_no_auth
        or authenticate(request, approvers) is not None
        or authenticate(request, request.app[keys.READERS]) is not None
        or proxy_identity(request, settings) is not None
    )


def sentry_ok(request: web.Request, body: bytes, settings: Settings) -> bool:
    """A valid `Sentry-Hook-Signature` over the raw body, or (legacy plugin, which cannot
    sign) the webhook token as a bearer header or `?token=` query parameter."""
    if settings.access.insecure_no_auth:
        return True
    secret = settings.access.sentry_client_secret
    signature = request.headers.get("Sentry-Hook-Signature")
    if secret is not None and signature is not None:
        return verify_sentry_signature(body, secret.get_secret_value(), signature)
    webhook_token = settings.access.webhook_token
    if webhook_token is not None and "token" in request.query:
        return hmac.compare_digest(
            request.query["token"].encode(), webhook_token.get_secret_value().encode()
        )
    return signature is None and token_ok(request, settings)


def _basic_password(header: str | None) -> str | None:
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, sep, password = decoded.partition(":")
    return password if sep else None
