-- 0003_decided_approvals: a decided approval is final.
--
-- Applied by `responder migrate` in one transaction under the migration advisory lock
-- (responder/adapters/store/postgres/migrating.py). Never edit a shipped file.
--
-- An approval leaves 'pending' once (approved, rejected, expired or cancelled: the
-- compare-and-set `UPDATE ... WHERE state = 'pending'` of the store) and is then the record of
-- a human decision: any UPDATE of a row that is no longer pending fails, for every role,
-- whatever the statement (a plain UPDATE, an upsert's DO UPDATE). The compare-and-set never
-- reaches such a row, so the application is unaffected.
--
-- Together with audit_events_append_only (0001) this is the database's half of "the daemon
-- cannot rewrite the audit": `serve` runs as a runtime role that owns nothing (so it cannot
-- ALTER TABLE ... DISABLE TRIGGER or drop the triggers) and holds only the privileges of
-- responder/adapters/store/postgres/roles.py (no UPDATE, DELETE or TRUNCATE on audit_events,
-- no DELETE on approvals); `responder migrate --runtime-role NAME`, run as the owning role,
-- grants them. The owning role can still do anything: keep its credentials away from the
-- daemon (docs/deployment.md).

CREATE FUNCTION approvals_decided_final() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state <> 'pending' THEN
        RAISE EXCEPTION 'approval % is already %: a decided approval cannot change',
            OLD.approval_id, OLD.state
            USING ERRCODE = 'integrity_constraint_violation',
                  HINT = 'decisions are final; a new decision needs a new approval request';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER approvals_decided_final BEFORE UPDATE ON approvals
    FOR EACH ROW EXECUTE FUNCTION approvals_decided_final();
