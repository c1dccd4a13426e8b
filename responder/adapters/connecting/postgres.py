"""PostgreSQL sessions bounded from their connection string, and DSNs named without passwords.

Used by the store and the monitored targets alike. Every session gets, through the libpq
`options` startup parameter, `statement_timeout` and `lock_timeout` equal to the caller's
timeout (a stuck statement or a lock wait is cancelled by the server itself),
`idle_in_transaction_session_timeout` (so responder can never become the idle blocker that
holds locks), and `TimeZone=UTC`. Options already in the DSN are kept; ours come after them
and win. `connect_timeout` is the timeout rounded up (libpq's minimum is 2 s).

Messages name the server as `postgresql://user@host:port/dbname`; the password (from the URL,
a `password=` keyword, or a DSN that does not even parse) is replaced by `***` wherever it
would appear.
"""

from __future__ import annotations

import math
import re
from urllib.parse import unquote

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

_URL_USERINFO = re.compile(r"^[a-z][a-z0-9+.-]*://([^/?#]*)@", re.IGNORECASE)
_KEYWORD_PASSWORD = re.compile(r"password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def session_options(timeout_seconds: float) -> str:
    """The `-c name=value` startup options that bound every statement of a session."""
    if timeout_seconds <= 0:
        raise ValueError(f"timeout_seconds must be > 0, got {timeout_seconds}")
    ms = max(1, math.ceil(timeout_seconds * 1000))
    idle_ms = max(1000, 2 * ms)
    return (
        f"-c statement_timeout={ms} -c lock_timeout={ms} "
        f"-c idle_in_transaction_session_timeout={idle_ms} -c TimeZone=UTC"
    )


def connect_timeout(timeout_seconds: float) -> int:
    """libpq's `connect_timeout` for `timeout_seconds`: rounded up, at least 2 s."""
    return max(2, math.ceil(timeout_seconds))


def session_conninfo(dsn: str, timeout_seconds: float, *, application_name: str) -> str:
    """`dsn` (URL or key=value) with our session bounds and `application_name` merged in.

    Raises psycopg.Error if `dsn` does not parse.
    """
    given = str(conninfo_to_dict(dsn).get("options") or "")
    return make_conninfo(
        dsn,
        options=" ".join(filter(None, [given, session_options(timeout_seconds)])),
        connect_timeout=str(connect_timeout(timeout_seconds)),
        application_name=application_name,
    )


def describe(dsn: str) -> str:
    """`postgresql://user@host:port/dbname`, never with the password."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "PostgreSQL (RESPONDER_DATABASE_URL does not parse)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    host = str(parts.get("host") or parts.get("hostaddr") or "localhost")
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname') or ''}"


def passwords(dsn: str) -> set[str]:
    """Every spelling of the password that `dsn` holds (parsed, raw and URL-decoded).

    An unescaped `@` in a URL password makes libpq read part of it as the host, so the part
    up to the last `@` counts, and so does each of its `@`-separated pieces.
    """
    found: set[str] = set()
    if (match := _URL_USERINFO.match(dsn)) and ":" in match.group(1):
        secret = match.group(1).split(":", 1)[1]
        found |= {secret, unquote(secret), *secret.split("@")}
    for match in _KEYWORD_PASSWORD.finditer(dsn):
        raw = match.group(1)
        found |= {raw, raw.strip("'")}
    try:
        parsed = conninfo_to_dict(dsn).get("password")
    except psycopg.Error:
        parsed = None
    if parsed:
        found.add(str(parsed))
    return {p for p in found if p}


def scrub(text: str, dsn: str) -> str:
    """`text` with every spelling of the DSN's password replaced by `***`."""
    for secret in sorted(passwords(dsn), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
