"""Redis URLs named in messages without their password (the coordinator, the monitored targets).

A URL is `redis://`, `rediss://` or `unix://`; its password may sit in the userinfo
(`redis://:secret@host`, URL-encoded) or in the query (`?password=secret`, as redis-py reads
it). `describe` names the server as `host:port` (or `unix:path`); `scrub` replaces the password
wherever an error message repeats it.
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_PORT = 6379


def describe(url: str) -> str:
    """`host:port` of a Redis URL (IPv6 hosts bracketed), or `unix:path` for a socket."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix:{parts.path}"
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        port = DEFAULT_PORT
    host = parts.hostname or "localhost"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def password(url: str) -> str | None:
    """The password a Redis URL holds (URL-decoded from the userinfo, else `?password=`)."""
    parts = urlsplit(url)
    if parts.password:
        return unquote(parts.password)
    return parse_qs(parts.query).get("password", [None])[0]


def scrub(text: str, url: str) -> str:
    """`text` with the URL's password replaced by `***`."""
    secret = password(url)
    return text.replace(secret, "***") if secret else text
