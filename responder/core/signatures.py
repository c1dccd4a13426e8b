"""Constant-time checks of webhook credentials: Sentry's body HMAC and bearer tokens.

Pure functions over the raw request bytes and header values; the web edge decides what to
answer. An empty configured secret or token never matches anything.
"""

from __future__ import annotations

import hashlib
import hmac


def verify_sentry_signature(body: bytes, secret: str, signature: str | None) -> bool:
    """True when `signature` is the hex HMAC-SHA256 of the exact `body` under `secret`.

    This is Sentry's `Sentry-Hook-Signature`: the key is the integration's client secret as
    UTF-8 and the message is the raw request body, byte for byte (never a re-serialised
    JSON). The timestamp header is not part of the signature. Hex digits are compared
    case-insensitively, surrounding whitespace is ignored, and the comparison runs in
    constant time.
    """
    if not secret or not signature:
        return False
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    given = signature.strip().lower().encode("utf-8", "surrogatepass")
    return hmac.compare_digest(expected.encode("ascii"), given)


def bearer_matches(header: str | None, token: str) -> bool:
    """True when the `Authorization` header is `Bearer <token>` (scheme case-insensitive).

    Both sides are hashed before the constant-time comparison, so neither the token's
    content nor its length leaks through timing.
    """
    if not token or not header:
        return False
    parts = header.strip().split(None, 1)
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return False
    given = hashlib.sha256(parts[1].strip().encode("utf-8", "surrogatepass")).digest()
    wanted = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
    return hmac.compare_digest(given, wanted)
