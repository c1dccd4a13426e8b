"""How responder connects to PostgreSQL: bounded sessions, and errors that never leak the DSN.

Every session gets, through the libpq `options` startup parameter, `statement_timeout` and
`lock_timeout` equal to the store timeout (a stuck statement or a lock wait is cancelled by the
server itself), `idle_in_transaction_session_timeout` (so responder can never become the idle
blocker that holds locks), and `TimeZone=UTC`. Options already in the DSN are kept; ours come
after them and win. `connect_timeout` is the store timeout rounded up (libpq's minimum is 2 s).

Error messages name the server as `postgresql://user@host:port/dbname` and say what to check;
the password (from the URL, a `password=` keyword, or a DSN that does not even parse) is
replaced by `***` wherever it would appear.
"""

from __future__ import annotations

import math
import re
from urllib.parse import unquote

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from responder.errors import StoreUnavailableError

APPLICATION_NAME = "responder"
_URL_USERINFO = re.compile(r"^[a-z][a-z0-9+.-]*://([^/?#]*)@", re.IGNORECASE)
_KEYWORD_PASSWORD = re.compile(r"password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_WHAT_TO_CHECK = (
    "check that the server is up and reachable, the user, password and database in "
    "RESPONDER_DATABASE_URL, that it is a writable primary (not a read-only replica) with free "
    "disk space, and RESPONDER_STORE_TIMEOUT_SECONDS"
)


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


def conninfo(dsn: str, timeout_seconds: float) -> str:
    """`dsn` (URL or key=value) with our timeouts and application name merged in.

    Raises StoreUnavailableError (password redacted) if `dsn` does not parse.
    """
    try:
        given = conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        raise unavailable(dsn, f"RESPONDER_DATABASE_URL does not parse ({exc})") from exc
    options = " ".join(
        filter(None, [str(given.get("options") or ""), session_options(timeout_seconds)])
    )
    return make_conninfo(
        dsn,
        options=options,
        connect_timeout=str(max(2, math.ceil(timeout_seconds))),
        application_name=str(given.get("application_name") or APPLICATION_NAME),
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


def unavailable(dsn: str, cause: object) -> StoreUnavailableError:
    """A StoreUnavailableError naming the server, the cause and what to check, password-free."""
    text = " ".join(str(cause).split()) or type(cause).__name__
    return StoreUnavailableError(scrub(f"{describe(dsn)}: {text}; {_WHAT_TO_CHECK}", dsn))
