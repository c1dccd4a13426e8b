"""Host allowlists for outgoing HTTP: strict URL parsing and pattern matching (pure).

Rendered URLs come from alert labels, which are attacker input, so a URL is accepted only when
it is plain printable ASCII, has an `http`/`https` scheme, carries no userinfo, names a host that
is a valid DNS name or IP literal, and that host (and port) matches an allowlist pattern.

Pattern syntax (one per entry of RESPONDER_HTTP_ALLOWED_HOSTS):

- `checkout.shop.svc` / `127.0.0.1` / `[::1]`: exactly that host, any port;
- `localhost:8080`: that host on that port only (a URL without a port has port 80 or 443);
- `*.svc.cluster.local`: one or more DNS labels followed by `.svc.cluster.local`
  (not `svc.cluster.local` itself); `*` is allowed only as the whole leftmost label.

No pattern means nothing is allowed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from responder.errors import NotAllowedError

SETTING_NAME = "RESPONDER_HTTP_ALLOWED_HOSTS"

_URL = re.compile(
    r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<rest>[/?#].*)?$"
)
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_PORT = re.compile(r"^[0-9]{1,5}$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Target:
    """The parts of an accepted URL that allowlists look at."""

    scheme: str
    host: str  # lower-case DNS name, dotted IPv4 or compressed IPv6 (no brackets)
    port: int  # explicit or the scheme's default


@dataclass(frozen=True)
class HostPattern:
    """One parsed allowlist entry."""

    host: str  # exact host, or the suffix after `*.` when `wildcard`
    wildcard: bool
    port: int | None

    def matches(self, target: Target) -> bool:
        """Whether `target` is covered by this pattern."""
        if self.port is not None and self.port != target.port:
            return False
        if self.wildcard:
            return target.host.endswith("." + self.host) and not _is_ip(target.host)
        return target.host == self.host


def _show(text: str, limit: int = 80) -> str:
    """Quote attacker-controlled text for an error message, capped in length."""
    shown = text if len(text) <= limit else text[:limit] + "..."
    return ascii(shown)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _normalize_host(raw: str) -> str | None:
    """A canonical lower-case host, or None when `raw` is not a DNS name or IP literal."""
    if raw.startswith("[") and raw.endswith("]"):
        try:
            return ipaddress.IPv6Address(raw[1:-1]).compressed  # rejects zone ids (`%eth0`)
        except ValueError:
            return None
    host = raw.lower()
    if not host or len(host) > 253:
        return None
    labels = host.split(".")
    if labels[-1].isdigit():
        # Numeric last label: only a canonical dotted quad (no `127.1`, `0x7f.0.0.1`, `2130706433`).
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            return None
    if all(_LABEL.match(label) for label in labels):
        return host
    return None


def _split_port(authority: str) -> tuple[str, str | None]:
    """Split `host[:port]` (IPv6 literals in brackets)."""
    if authority.startswith("["):
        end = authority.find("]")
        if end == -1:
            return authority, None
        host, rest = authority[: end + 1], authority[end + 1 :]
        if not rest:
            return host, None
        if rest.startswith(":"):
            return host, rest[1:]
        return authority, None  # junk after `]`; host validation refuses it
    host, sep, port = authority.rpartition(":")
    if not sep:
        return authority, None
    return host, port


def _parse_port(text: str) -> int | None:
    if not _PORT.match(text):
        return None
    port = int(text)
    return port if 0 < port < 65536 else None


def parse_target(url: str) -> Target:
    """Parse `url` strictly; raise NotAllowedError saying what is wrong with it."""
    if not url or any(not ("!" <= ch <= "~") for ch in url):
        raise NotAllowedError(
            f"URL {_show(url)} refused: it must be plain printable ASCII without spaces "
            "(percent-encode the path and query; hosts must be ASCII/punycode)"
        )
    found = _URL.match(url)
    if found is None:
        raise NotAllowedError(f"URL {_show(url)} refused: write it as http(s)://host[:port]/path")
    scheme = found["scheme"].lower()
    if scheme not in _DEFAULT_PORTS:
        raise NotAllowedError(
            f"URL scheme {_show(scheme)} refused: only http and https are allowed"
        )
    authority = found["authority"]
    if "@" in authority:
        raise NotAllowedError(
            "URL refused: credentials (userinfo `user@`) are not allowed in URLs; "
            "send them in a header instead"
        )
    raw_host, raw_port = _split_port(authority)
    host = _normalize_host(raw_host)
    if host is None:
        raise NotAllowedError(
            f"URL host {_show(raw_host)} refused: not a valid DNS name or IP address"
        )
    if raw_port is None:
        port = _DEFAULT_PORTS[scheme]
    else:
        parsed_port = _parse_port(raw_port)
        if parsed_port is None:
            raise NotAllowedError(f"URL port {_show(raw_port)} refused: must be 1-65535")
        port = parsed_port
    return Target(scheme=scheme, host=host, port=port)


def parse_pattern(text: str) -> HostPattern:
    """Parse one allowlist entry; raise ValueError naming the setting when it is invalid."""
    entry = text.strip()
    raw_host, raw_port = _split_port(entry)
    port: int | None = None
    if raw_port is not None:
        port = _parse_port(raw_port)
        if port is None:
            raise ValueError(f"{SETTING_NAME}: invalid port in {entry!r}; write host:1-65535")
    wildcard = raw_host.startswith("*.")
    host = _normalize_host(raw_host[2:] if wildcard else raw_host)
    if host is None or (wildcard and _is_ip(host)):
        raise ValueError(
            f"{SETTING_NAME}: invalid entry {entry!r}; write a host (checkout.shop.svc), "
            "an IP (127.0.0.1, [::1]), optionally with :port, or *.suffix (*.svc.cluster.local)"
        )
    return HostPattern(host=host, wildcard=wildcard, port=port)


@lru_cache(maxsize=64)
def parse_patterns(patterns: tuple[str, ...]) -> tuple[HostPattern, ...]:
    """Parse every entry (cached: the setting is parsed once, not per request)."""
    return tuple(parse_pattern(p) for p in patterns)


def host_allowed(url: str, patterns: Sequence[str]) -> bool:
    """Whether `url` is a well-formed http(s) URL whose host matches one of `patterns`.

    Raises ValueError only when a pattern itself is invalid (a configuration error).
    """
    compiled = parse_patterns(tuple(patterns))
    try:
        target = parse_target(url)
    except NotAllowedError:
        return False
    return any(p.matches(target) for p in compiled)


def check_url(url: str, patterns: Sequence[str]) -> None:
    """Raise NotAllowedError unless `url` may be requested under `patterns`.

    The message names the host and tells the operator which setting to change.
    """
    compiled = parse_patterns(tuple(patterns))
    target = parse_target(url)
    if any(p.matches(target) for p in compiled):
        return
    shown = f"[{target.host}]" if ":" in target.host else target.host
    if not compiled:
        raise NotAllowedError(
            f"host {shown!r} refused: {SETTING_NAME} is empty, so no outgoing HTTP is allowed; "
            f"add {shown!r} (or a '*.suffix' pattern) to {SETTING_NAME}"
        )
    raise NotAllowedError(
        f"host {shown}:{target.port} refused: it matches no entry of {SETTING_NAME}; "
        f"add {shown!r} (or a '*.suffix' pattern) to {SETTING_NAME} if it should be reachable"
    )


def plain_base_url(value: str) -> str:
    """A base URL without query or fragment, trailing `/` dropped (ValueError otherwise):
    actions append their own paths to it."""
    if "?" in value or "#" in value:
        raise ValueError("base_url takes no query or fragment: http(s)://host[:port][/prefix]")
    return value.rstrip("/")
