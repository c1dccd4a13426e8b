"""`responder migrate`: apply the PostgreSQL store's versioned schema migrations.

Reads RESPONDER_DATABASE_URL. Without it there is nothing to do: the embedded SQLite store
migrates its file itself whenever responder opens it. Each migration may take up to
MIGRATE_TIMEOUT_FLOOR_SECONDS (or RESPONDER_STORE_TIMEOUT_SECONDS if larger), since a schema
change on a big table can outlast an ordinary store call. Safe to run from several replicas at
once and to run again: applied versions are skipped.

Run it as the role that owns the tables. `--runtime-role NAME` (or
RESPONDER_DATABASE_RUNTIME_ROLE) then grants NAME exactly what `serve` needs, so the daemon
can run as a role that cannot rewrite the audit (`adapters/store/postgres/roles.py`); pass it
on every run, since a migration that adds a table needs its grant too.
"""

from __future__ import annotations

import asyncio
from typing import TextIO

from pydantic import ValidationError

from responder.adapters.connecting.postgres import describe
from responder.adapters.store.postgres.migrating import latest_version, migrate
from responder.errors import StoreUnavailableError
from responder.settings import Settings, error_lines

MIGRATE_TIMEOUT_FLOOR_SECONDS = 60.0


def load_settings(err: TextIO) -> Settings | None:
    """Settings from env/config, or None after writing why they are invalid (values unsaid)."""
    try:
        return Settings()
    except ValidationError as exc:
        for line in error_lines(exc):
            err.write(f"invalid setting {line}\n")
        return None


def migrate_command(*, out: TextIO, err: TextIO, runtime_role: str | None = None) -> int:
    """Exit 0 when the schema is current (listing what was applied) and `runtime_role` (else
    RESPONDER_DATABASE_RUNTIME_ROLE), if any, has the runtime privileges; 1 if the database
    failed, 2 on invalid settings."""
    settings = load_settings(err)
    if settings is None:
        return 2
    if settings.store.database_url is None:
        out.write(
            "RESPONDER_DATABASE_URL is not set: the embedded SQLite store "
            f"({settings.store.sqlite_path}) migrates itself when responder opens it; "
            "nothing to do\n"
        )
        return 0
    dsn = settings.store.database_url.get_secret_value()
    timeout = max(settings.store.store_timeout_seconds, MIGRATE_TIMEOUT_FLOOR_SECONDS)
    role = runtime_role or settings.store.database_runtime_role
    try:
        applied = asyncio.run(migrate(dsn, timeout_seconds=timeout, runtime_role=role))
    except StoreUnavailableError as exc:
        err.write(f"responder migrate failed: {exc}\n")
        return 1
    target = describe(dsn)
    if applied:
        out.write(f"applied to {target}: {', '.join(applied)}\n")
    out.write(f"{target} is at schema version {latest_version()} (up to date)\n")
    if role:
        out.write(
            f"runtime role {role}: may read and append the audit and decide pending approvals; "
            "may not change audit rows, decided approvals or the tables (serve with its DSN)\n"
        )
    else:
        out.write(
            "no runtime role given (--runtime-role): a serve connecting as this role could "
            "rewrite the audit; see docs/deployment.md\n"
        )
    return 0
