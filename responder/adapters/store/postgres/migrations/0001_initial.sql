-- 0001_initial: the tables of the PostgreSQL store.
--
-- Applied by `responder migrate` (or at start-up with RESPONDER_MIGRATE_ON_START=true) inside
-- one transaction, under the advisory lock taken by responder/adapters/migrating.py, which also
-- records it in schema_migrations. Never edit a shipped file: add 0002_<what>.sql instead.
--
-- Conventions: times are timestamptz; JSON is `json` (kept as written, so a "\u0000" escape
-- from a webhook stays storable, which jsonb refuses); state and kind vocabularies live in the
-- code (responder/models/runs.py), except approvals.state, which is fixed here. Run ids use
-- the "C" collation so keyset pagination orders them byte-wise, as SQLite does.

CREATE TABLE alerts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id  text        NOT NULL,
    source       text        NOT NULL,
    fingerprint  text        NOT NULL,
    identity     text        NOT NULL,
    status       text        NOT NULL,
    name         text        NOT NULL,
    received_at  timestamptz NOT NULL,
    processed_at timestamptz,
    alert        json        NOT NULL
);
-- start-up recovery: unprocessed alerts, oldest first
CREATE INDEX alerts_unprocessed ON alerts (id) WHERE processed_at IS NULL;
-- one alert's history, and alerts by time
CREATE INDEX alerts_by_fingerprint ON alerts (source, fingerprint, received_at);
CREATE INDEX alerts_by_received ON alerts (received_at);

CREATE TABLE runs (
    run_id          text COLLATE "C" PRIMARY KEY,
    rule_id         text        NOT NULL,
    alert_id        bigint      NOT NULL,
    source          text        NOT NULL,
    fingerprint     text        NOT NULL,
    alert_identity  text        NOT NULL,
    guard_key       text        NOT NULL,
    idempotency_key text        NOT NULL,
    state           text        NOT NULL,
    reason          text,
    dry_run         boolean     NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    not_before      timestamptz,
    owner           text
);
-- GET /v1/runs: newest first, optionally by rule or by state (keyset on (created_at, run_id))
CREATE INDEX runs_by_created ON runs (created_at DESC, run_id DESC);
CREATE INDEX runs_by_rule ON runs (rule_id, created_at DESC, run_id DESC);
CREATE INDEX runs_by_state ON runs (state, created_at DESC, run_id DESC);
-- open runs of one alert (a resolved alert cancels them)
CREATE INDEX runs_by_fingerprint ON runs (source, fingerprint);
-- the `for:` poller: pending runs by due time
CREATE INDEX runs_due ON runs (not_before) WHERE state = 'pending';
-- open runs at start-up and in the lease sweep
CREATE INDEX runs_open ON runs (created_at, run_id)
    WHERE state IN ('pending', 'waiting_approval', 'running');

CREATE TABLE steps (
    run_id      text COLLATE "C" NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    step_id     text        NOT NULL,
    position    integer     NOT NULL,
    action      text        NOT NULL,
    state       text        NOT NULL,
    reason      text,
    params      json,
    output      json,
    error       text,
    attempts    integer     NOT NULL DEFAULT 0,
    started_at  timestamptz,
    finished_at timestamptz,
    PRIMARY KEY (run_id, step_id)
);

CREATE TABLE approvals (
    id           text COLLATE "C" PRIMARY KEY,
    run_id       text COLLATE "C" NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    step_id      text        NOT NULL,
    state        text        NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'approved', 'rejected', 'expired')),
    requested_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    decided_by   text,
    decided_at   timestamptz,
    reason       text
);
-- GET /v1/approvals?status=pending and the expiry sweep
CREATE INDEX approvals_pending ON approvals (expires_at) WHERE state = 'pending';
CREATE INDEX approvals_by_run ON approvals (run_id, step_id);
CREATE INDEX approvals_by_state ON approvals (state, requested_at DESC);

CREATE TABLE audit_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL,
    kind       text        NOT NULL,
    actor      text        NOT NULL,
    run_id     text COLLATE "C",
    rule_id    text,
    step_id    text,
    alert_id   bigint,
    reason     text,
    details    json        NOT NULL DEFAULT '{}'
);
-- a run's trail (GET /v1/runs/{id}) and retention by time
CREATE INDEX audit_by_run ON audit_events (run_id, at, id);
CREATE INDEX audit_by_time ON audit_events (at);

-- Append-only: UPDATE and TRUNCATE always fail; DELETE fails unless the transaction said
-- `SET LOCAL responder.audit_prune = 'on'`, which only the retention job
-- (`responder audit prune`, PostgresStore.prune_audit) does, appending an `audit_pruned`
-- event in the same transaction. This guards the application's code paths; it is not a
-- permission boundary against the database owner.
CREATE FUNCTION audit_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('responder.audit_prune', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING HINT = 'retention is `responder audit prune --older-than 90d`';
END
$$;
CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- check_writable upserts its one row: a read-only replica or a full disk fails it
CREATE TABLE writable_probe (
    id         smallint PRIMARY KEY CHECK (id = 1),
    checked_at timestamptz NOT NULL
);
