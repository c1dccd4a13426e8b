"""Tables of the SQLite store and their versioned migrations, applied when the store opens.

Datetimes are stored as fixed-width ISO-8601 UTC text (`2024-05-01T12:00:00.000000+00:00`), so
text order is time order and they read back timezone-aware. JSON columns hold pydantic JSON.
The SQL that maps models to rows is in `queries`.

Append-only audit: UPDATE of `audit_events` always aborts; DELETE aborts unless the
`audit_prune_guard` table holds a row, which only the retention job (`prune_audit`) inserts
and removes again inside its own write transaction, so no other connection ever sees it.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from responder.adapters.store.codecs import aware
from responder.errors import StoreUnavailableError

_V1 = (
    """CREATE TABLE alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        delivery_id TEXT NOT NULL, source TEXT NOT NULL, fingerprint TEXT NOT NULL,
        identity TEXT NOT NULL, status TEXT NOT NULL, name TEXT NOT NULL,
        received_at TEXT NOT NULL, processed_at TEXT, alert_json TEXT NOT NULL)""",
    "CREATE INDEX alerts_unprocessed ON alerts (id) WHERE processed_at IS NULL",
    "CREATE INDEX alerts_by_fingerprint ON alerts (source, fingerprint)",
    """CREATE TABLE runs (
        run_id TEXT PRIMARY KEY, rule_id TEXT NOT NULL, alert_id INTEGER NOT NULL,
        source TEXT NOT NULL, fingerprint TEXT NOT NULL, alert_identity TEXT NOT NULL,
        guard_key TEXT NOT NULL, idempotency_key TEXT NOT NULL, state TEXT NOT NULL,
        reason TEXT, dry_run INTEGER NOT NULL CHECK (dry_run IN (0, 1)),
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL, not_before TEXT)""",
    "CREATE INDEX runs_by_created ON runs (created_at, run_id)",
    "CREATE INDEX runs_by_rule ON runs (rule_id, created_at, run_id)",
    "CREATE INDEX runs_by_state ON runs (state, created_at, run_id)",
    "CREATE INDEX runs_by_fingerprint ON runs (source, fingerprint)",
    """CREATE TABLE steps (
        run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        step_id TEXT NOT NULL, position INTEGER NOT NULL, action TEXT NOT NULL,
        state TEXT NOT NULL, reason TEXT, params_json TEXT, output_json TEXT, error TEXT,
        attempts INTEGER NOT NULL, started_at TEXT, finished_at TEXT,
        PRIMARY KEY (run_id, step_id))""",
    """CREATE TABLE audit_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, kind TEXT NOT NULL,
        actor TEXT NOT NULL, run_id TEXT, rule_id TEXT, step_id TEXT, alert_id INTEGER,
        reason TEXT, details_json TEXT NOT NULL)""",
    "CREATE INDEX audit_by_run ON audit_events (run_id, at)",
    "CREATE INDEX audit_by_time ON audit_events (at)",
    """CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END""",
    """CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END""",
    """CREATE TABLE writable_probe (
        id INTEGER PRIMARY KEY CHECK (id = 1), checked_at TEXT NOT NULL)""",
)

_V2 = (
    "ALTER TABLE runs ADD COLUMN owner TEXT",
    "CREATE INDEX runs_due ON runs (not_before) WHERE state = 'pending'",
    "CREATE TABLE audit_prune_guard (id INTEGER PRIMARY KEY CHECK (id = 1))",
    "DROP TRIGGER audit_events_no_delete",
    """CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
        WHEN NOT EXISTS (SELECT 1 FROM audit_prune_guard)
        BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END""",
    """CREATE TABLE approvals (
        id TEXT PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        step_id TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'approved', 'rejected', 'expired')),
        requested_at TEXT NOT NULL, expires_at TEXT NOT NULL, decided_by TEXT,
        decided_at TEXT, reason TEXT)""",
    "CREATE INDEX approvals_pending ON approvals (expires_at) WHERE state = 'pending'",
    "CREATE INDEX approvals_by_run ON approvals (run_id, step_id)",
)

# Version 3: approvals hold every field of `models.approvals.Approval`. The version-2 table is
# dropped and recreated, not altered: it never held data in production (nothing wrote
# approvals before this version), its key was `id` and its state CHECK lacked 'cancelled'.
# No foreign key to runs: an approval is the record of a human decision and is kept as such.
_V3 = (
    "DROP TABLE approvals",  # its indexes go with it
    """CREATE TABLE approvals (
        approval_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, step_id TEXT NOT NULL,
        rule_id TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'approved', 'rejected', 'expired', 'cancelled')),
        reason TEXT NOT NULL, requested_at TEXT NOT NULL, expires_at TEXT NOT NULL,
        approvers_json TEXT NOT NULL DEFAULT '[]', action TEXT NOT NULL, params_json TEXT,
        decided_by TEXT, decided_at TEXT, comment TEXT, source_ip TEXT)""",
    "CREATE INDEX approvals_by_state ON approvals (state, requested_at DESC, approval_id DESC)",
    "CREATE INDEX approvals_pending ON approvals (expires_at, approval_id) WHERE state = 'pending'",
    "CREATE INDEX approvals_by_run ON approvals (run_id, requested_at DESC)",
)

# Version 4: each step keeps the replica that ran it and the request as sent (values filled
# in where its action's description had placeholders): `StepRecord.instance` and `.sent`.
_V4 = (
    "ALTER TABLE steps ADD COLUMN instance TEXT",
    "ALTER TABLE steps ADD COLUMN sent_json TEXT",
)

MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (1, _V1),
    (2, _V2),
    (3, _V3),
    (4, _V4),
)
"""(version, statements) in order; append a new version, never edit a shipped one."""

LATEST_VERSION = MIGRATIONS[-1][0]
_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT)"
)


def apply_schema(conn: sqlite3.Connection) -> int:
    """Bring the schema up to LATEST_VERSION in one transaction; return the version found.

    Idempotent and safe against a concurrent opener (BEGIN IMMEDIATE serialises them).
    `conn` must be in autocommit mode (isolation_level=None).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_VERSION_TABLE)
        found = int(
            conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
        )
        if found > LATEST_VERSION:
            raise StoreUnavailableError(
                f"database schema version {found} is newer than this responder knows "
                f"({LATEST_VERSION}); upgrade responder or point it at another database"
            )
        for version, statements in MIGRATIONS[found:]:  # versions are 1, 2, 3, ...
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                (version, to_text(datetime.now(UTC))),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found


def to_text(value: datetime) -> str:
    """Fixed-width ISO-8601 UTC text; naive datetimes are refused, not guessed."""
    if value.tzinfo is not UTC:  # most are UTC already (the clock's): no conversion
        value = aware(value).astimezone(UTC)
    return value.isoformat(timespec="microseconds")


def from_text(text: str) -> datetime:
    """Read `to_text` output back as an aware UTC datetime."""
    return datetime.fromisoformat(text).astimezone(UTC)
