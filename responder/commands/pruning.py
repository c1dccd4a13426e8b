"""`responder audit prune --older-than 90d`: the audit log's one retention path, itself audited.

Deletes audit events older than now minus the given age from the configured store (PostgreSQL
when RESPONDER_DATABASE_URL is set, else the SQLite file under RESPONDER_DATA_DIR) and, in the
same transaction, appends an `audit_pruned` event naming who ran it (`cli:<user>@<host>`), the
cut-off and the count. Nothing else in responder deletes or changes audit events. The job may
take up to PRUNE_TIMEOUT_FLOOR_SECONDS (or RESPONDER_STORE_TIMEOUT_SECONDS if larger).

On PostgreSQL it connects with RESPONDER_DATABASE_URL like `responder migrate`, and like it must
run as the role that owns the tables: the runtime role `serve` uses may not delete audit rows,
and is refused with a message saying so (docs/deployment.md, "Database roles").
"""

from __future__ import annotations

import asyncio
import getpass
import os
import socket
from datetime import UTC, datetime, timedelta
from typing import TextIO

from responder.adapters.store.postgres.store import PostgresStore
from responder.adapters.store.sqlite.store import SqliteStore
from responder.commands.migrating import load_settings
from responder.errors import StoreUnavailableError
from responder.models.durations import parse_duration
from responder.ports.store import Store
from responder.settings import Settings

PRUNE_TIMEOUT_FLOOR_SECONDS = 120.0


def whoami() -> str:
    """The actor recorded for a prune run from the command line."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no passwd entry (some containers)
        user = f"uid{os.getuid()}"
    return f"cli:{user}@{socket.gethostname()}"


def prune_command(
    older_than: str,
    *,
    out: TextIO,
    err: TextIO,
    actor: str | None = None,
    now: datetime | None = None,
) -> int:
    """Exit 0 after pruning (printing the count), 1 if the store failed, 2 on bad input."""
    try:
        age = parse_duration(older_than)
    except ValueError as exc:
        err.write(f"--older-than: {exc}\n")
        return 2
    if age <= timedelta(0):
        err.write(f"--older-than must be a positive age such as 90d, got {older_than!r}\n")
        return 2
    settings = load_settings(err)
    if settings is None:
        return 2
    cutoff = (now or datetime.now(UTC)) - age
    who = actor or whoami()
    try:
        count = asyncio.run(_prune(settings, cutoff, who))
    except StoreUnavailableError as exc:
        err.write(f"responder audit prune failed: {exc}\n")
        return 1
    out.write(
        f"pruned {count} audit event{'s' if count != 1 else ''} older than "
        f"{cutoff.isoformat(timespec='seconds')} ({older_than}); recorded as audit_pruned "
        f"by {who}\n"
    )
    return 0


async def _prune(settings: Settings, cutoff: datetime, actor: str) -> int:
    timeout = max(settings.store.store_timeout_seconds, PRUNE_TIMEOUT_FLOOR_SECONDS)
    store: Store
    if settings.store.database_url is not None:
        dsn = settings.store.database_url.get_secret_value()
        store = await PostgresStore.open(dsn, timeout_seconds=timeout, pool_max=1)
    else:
        if not settings.store.sqlite_path.exists():
            raise StoreUnavailableError(
                f"no SQLite store at {settings.store.sqlite_path}; check RESPONDER_DATA_DIR (and "
                "RESPONDER_DATABASE_URL, if the audit log is in PostgreSQL)"
            )
        store = await SqliteStore.open(
            settings.store.sqlite_path, timeout_seconds=timeout, batch_max=1
        )
    try:
        return await store.prune_audit(cutoff, actor)
    finally:
        await store.close()
