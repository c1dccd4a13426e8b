"""Approver identities: named tokens (hashed at load, compared in constant time) and groups."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from responder.settings import Settings


@dataclass(frozen=True)
class Approver:
    """A person (or team account) who may decide approvals."""

    name: str
    groups: frozenset[str]
    token_sha256: bytes

    def may_decide(self, allowed: tuple[str, ...]) -> bool:
        """Whether a step restricted to `allowed` names or groups accepts this approver."""
        return not allowed or self.name in allowed or bool(self.groups & set(allowed))


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def parse_approvers(text: str, origin: str) -> list[Approver]:
    """`name:token[:group|group]` entries separated by commas or new lines.

    Raises ValueError naming `origin` and the entry number (never the token).
    """
    approvers: list[Approver] = []
    entries = [e.strip() for e in text.replace("\n", ",").split(",")]
    for number, entry in enumerate((e for e in entries if e and not e.startswith("#")), 1):
        name, _, rest = entry.partition(":")
        token, _, groups = rest.partition(":")
        if not name or not token:
            raise ValueError(f"{origin}: entry {number} must be name:token[:group|group]")
        group_set = frozenset(g.strip() for g in groups.split("|") if g.strip())
        approvers.append(Approver(name.strip(), group_set, _digest(token.strip())))
    return approvers


def load_approvers(settings: Settings) -> tuple[Approver, ...]:
    """Approvers from RESPONDER_APPROVER_TOKENS and the file RESPONDER_APPROVER_TOKENS_FILE.

    Only hashes are kept. A token equal to the webhook token is refused: the sender of alerts
    must never be able to approve what they trigger.
    """
    found: list[Approver] = []
    if settings.access.approver_tokens is not None:
        found += parse_approvers(
            settings.access.approver_tokens.get_secret_value(), "RESPONDER_APPROVER_TOKENS"
        )
    if settings.access.approver_tokens_file is not None:
        path: Path = settings.access.approver_tokens_file
        found += parse_approvers(path.read_text(), str(path))
    if settings.access.webhook_token is not None:
        webhook = _digest(settings.access.webhook_token.get_secret_value())
        if any(hmac.compare_digest(a.token_sha256, webhook) for a in found):
            raise ValueError("an approver token equals RESPONDER_WEBHOOK_TOKEN; use another token")
    return tuple(found)


def load_readers(settings: Settings) -> tuple[Approver, ...]:
    """Read-only identities from RESPONDER_READER_TOKENS (`name:token,...`): hashes only."""
    if settings.access.reader_tokens is None:
        return ()
    return tuple(
        parse_approvers(settings.access.reader_tokens.get_secret_value(), "RESPONDER_READER_TOKENS")
    )


def proxy_identity(request: web.Request, settings: Settings) -> Approver | None:
    """The identity an authenticating proxy (oauth2-proxy style) vouches for, if enabled.

    Only when RESPONDER_TRUSTED_IDENTITY_HEADER is set, and only for requests whose peer
    address is one of RESPONDER_TRUSTED_PROXIES.
    """
    header = settings.access.trusted_identity_header
    if not header or not request.remote:
        return None
    try:
        peer = ipaddress.ip_address(request.remote)
    except ValueError:
        return None
    proxies = settings.access.trusted_proxies
    if not any(peer in ipaddress.ip_network(n, strict=False) for n in proxies):
        return None
    name = request.headers.get(header, "").strip()
    if not name:
        return None
    raw_groups = request.headers.get(settings.access.trusted_groups_header or "", "")
    groups = frozenset(g.strip() for g in raw_groups.split(",") if g.strip())
    return Approver(name, groups, b"")


def authenticate(request: web.Request, approvers: tuple[Approver, ...]) -> Approver | None:
    """The approver whose token the request carries as `Authorization: Bearer`, if any."""
    scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    digest = _digest(token.strip())
    match = None
    for approver in approvers:  # every entry is compared: timing does not tell which matched
        if hmac.compare_digest(approver.token_sha256, digest):
            match = approver
    return match
