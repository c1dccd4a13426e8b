-- 0002_approvals: the approvals table holds every field of responder.models.approvals.Approval.
--
-- Applied by `responder migrate` (or at start-up with RESPONDER_MIGRATE_ON_START=true) in one
-- transaction under the migration advisory lock (responder/adapters/migrating.py).
--
-- The 0001 table is DROPPED and recreated, not altered: it has never held data in production
-- (nothing wrote approvals before this version), its key was `id` and its state CHECK lacked
-- 'cancelled'. Any row it might hold is lost; that is intended.
--
-- No foreign key to runs: an approval is the record of a human decision and is kept as such
-- (like audit_events.run_id); the engine writes the run before asking.
-- `approvers` is a JSON list of names or groups (empty: any approver); `params` the rendered,
-- redacted request the step would send (NULL when there is none). Ids use the "C" collation
-- so ties in `requested_at` order byte-wise, as in SQLite.

DROP TABLE approvals;

CREATE TABLE approvals (
    approval_id  text COLLATE "C" PRIMARY KEY,
    run_id       text COLLATE "C" NOT NULL,
    step_id      text        NOT NULL,
    rule_id      text        NOT NULL,
    state        text        NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'approved', 'rejected', 'expired', 'cancelled')),
    reason       text        NOT NULL,
    requested_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    approvers    json        NOT NULL DEFAULT '[]',
    action       text        NOT NULL,
    params       json,
    decided_by   text,
    decided_at   timestamptz,
    comment      text,
    source_ip    text
);
-- GET /v1/approvals?status=...: newest first within a state
CREATE INDEX approvals_by_state ON approvals (state, requested_at DESC, approval_id DESC);
-- the expiry sweep: pending approvals by expiry
CREATE INDEX approvals_pending ON approvals (expires_at, approval_id) WHERE state = 'pending';
-- a run's approvals (a resolved alert cancels them)
CREATE INDEX approvals_by_run ON approvals (run_id, requested_at DESC);
