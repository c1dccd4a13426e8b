"""The SqlApi port: statements against monitored PostgreSQL servers, by target name.

Targets come from RESPONDER_POSTGRES_TARGETS, a JSON object `{"orders": "postgresql://..."}`
(`parse_targets`). These are the servers responder *watches*, never its own store.

Every call opens one short-lived connection (psycopg 3 async) and closes it: nothing is held
open against a server that may be at its connection limit, and a dead server costs one call.
The session is bounded at start-up as the store's are (`connecting.postgres`:
`statement_timeout` and `lock_timeout` = the call's timeout,
`idle_in_transaction_session_timeout`, `TimeZone=UTC`), `connect_timeout` is the timeout
rounded up (libpq's minimum is 2 s), and the session is named `responder-monitor` so the
containment actions can recognise (and refuse to signal) responder's own sessions. With
`read_only=True` the statement runs in a READ ONLY transaction that is rolled back.

Rows come back as dicts of JSON-safe values: intervals as seconds (float), date/times as ISO
8601 text, inet/cidr/uuid as text, numerics as int or float, bytea as hex.

Errors: an unknown target -> NotAllowedError listing the configured names; the server cannot
be reached, refuses new sessions (53300), shuts down, or our own statement/lock timeout fires
(57014, 55P03) -> TemporaryError; anything else (syntax, privileges, authentication) ->
PermanentError with the SQLSTATE. Messages name `postgresql://user@host:port/db`, never the
password.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import uuid
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from responder.adapters.connecting.postgres import (
    connect_timeout,
    describe,
    scrub,
    session_conninfo,
)
from responder.adapters.targets.named_targets import check_name, load_json_object
from responder.errors import NotAllowedError, PermanentError, TemporaryError

APPLICATION_NAME = "responder-monitor"
# SQLSTATEs worth retrying: connection problems (class 08), too many clients, shutdown /
# crash (57P01-57P03), our own statement or lock timeout, serialization/deadlock.
_TEMPORARY_STATES = frozenset({"53300", "57P01", "57P02", "57P03", "57014", "55P03", "40001"})
_PERMANENT_CONNECT_CLASSES = ("28", "3D")  # bad password/role, unknown database: fix config


def parse_targets(text: str) -> dict[str, str]:
    """RESPONDER_POSTGRES_TARGETS (a JSON object name -> DSN) as a dict.

    Raises ValueError naming the problem (never a DSN's password): not a JSON object, a name
    that is empty/too long, a DSN that is not a non-empty string or does not parse.
    """
    setting, example = "RESPONDER_POSTGRES_TARGETS", "postgresql://..."
    targets: dict[str, str] = {}
    for name, dsn in load_json_object(text, setting=setting, example=example).items():
        _check_target(name, dsn)
        targets[name] = dsn
    return targets


def _check_target(name: object, dsn: object) -> None:
    check_name("PostgreSQL", name)
    if not isinstance(dsn, str) or not dsn.strip():
        raise ValueError(f"PostgreSQL target {name!r}: the DSN must be a non-empty string")
    try:
        conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        raise ValueError(
            f"PostgreSQL target {name!r}: the DSN does not parse: {scrub(str(exc), dsn)}"
        ) from None


def json_safe(value: Any) -> Any:
    """`value` (as loaded by psycopg) turned into plain JSON data."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address | uuid.UUID):
        return str(value)
    return str(value)  # networks, ranges, enums...: their text form


class PsycopgSqlApi:
    """`SqlApi` over named PostgreSQL targets; one connection per call."""

    def __init__(self, targets: Mapping[str, str], *, max_rows: int = 1000) -> None:
        for name, dsn in targets.items():
            _check_target(name, dsn)
        if max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {max_rows}")
        self._targets = dict(targets)
        self._max_rows = max_rows

    def names(self) -> tuple[str, ...]:
        """The configured target names, sorted."""
        return tuple(sorted(self._targets))

    async def fetch(
        self,
        target: str,
        sql: str,
        params: Mapping[str, object],
        *,
        read_only: bool,
        timeout_seconds: float,
    ) -> list[dict[str, object]]:
        """Run one statement on `target` and return at most `max_rows` rows (see module doc)."""
        dsn = self._dsn(target)
        connect_seconds = connect_timeout(timeout_seconds)
        info = session_conninfo(dsn, timeout_seconds, application_name=APPLICATION_NAME)
        try:
            async with asyncio.timeout(connect_seconds + timeout_seconds + 1):
                conn = await self._connect(target, dsn, info)
                async with conn:
                    await conn.set_read_only(read_only)
                    cursor = await conn.execute(sql.encode(), dict(params))
                    raw = await cursor.fetchmany(self._max_rows) if cursor.description else []
                    await (conn.rollback() if read_only else conn.commit())
        except TimeoutError as exc:
            raise TemporaryError(
                f"PostgreSQL target {target!r} ({describe(dsn)}) did not answer within "
                f"{timeout_seconds:g} s; check the server's load and network",
                delay=2.0,
            ) from exc
        except psycopg.Error as exc:
            raise _translate(target, dsn, exc) from exc
        return [{key: json_safe(value) for key, value in row.items()} for row in raw]

    async def _connect(
        self, target: str, dsn: str, info: str
    ) -> psycopg.AsyncConnection[dict[str, Any]]:
        try:
            return await psycopg.AsyncConnection.connect(info, row_factory=dict_row)
        except psycopg.Error as exc:
            state = exc.sqlstate or ""
            where = f"PostgreSQL target {target!r} ({describe(dsn)})"
            text = scrub(" ".join(str(exc).split()), dsn)
            if state.startswith(_PERMANENT_CONNECT_CLASSES):
                raise PermanentError(
                    f"{where} refused the login [{state}]: {text}; check the user, password "
                    "and database in RESPONDER_POSTGRES_TARGETS"
                ) from exc
            raise TemporaryError(
                f"{where} cannot be reached: {text}; check that the server is up, reachable "
                "from here and accepting connections (max_connections)",
                delay=2.0,
            ) from exc

    def _dsn(self, target: str) -> str:
        try:
            return self._targets[target]
        except KeyError:
            known = ", ".join(self.names()) or "(none)"
            raise NotAllowedError(
                f"PostgreSQL target {target[:64]!r} is not configured; known targets: {known} "
                "(RESPONDER_POSTGRES_TARGETS)"
            ) from None


def _translate(target: str, dsn: str, exc: psycopg.Error) -> Exception:
    """Our error for a psycopg error raised after connecting (already translated kept)."""
    state = exc.sqlstate or ""
    where = f"PostgreSQL target {target!r} ({describe(dsn)})"
    text = scrub(" ".join(str(exc).split()) or type(exc).__name__, dsn)
    lost = not state and isinstance(exc, psycopg.OperationalError)  # connection dropped
    if state in _TEMPORARY_STATES or state.startswith("08") or lost:
        return TemporaryError(f"{where} failed [{state or 'no SQLSTATE'}]: {text}", delay=2.0)
    return PermanentError(f"{where} rejected the statement [{state or 'no SQLSTATE'}]: {text}")
