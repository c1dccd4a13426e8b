-- 0004_step_values: each step keeps the replica that ran it and the request as it was sent.
--
-- Applied by `responder migrate` (or at start-up with RESPONDER_MIGRATE_ON_START=true) in one
-- transaction under the migration advisory lock.
--
-- `instance` is the settings `instance_id` of the replica that ran (or skipped) the step;
-- `sent` the redacted request with the values only known at run time filled in (a rollout
-- restart's restartedAt, a scaled replica count, a uid read just before), NULL until the step
-- ran. Both are NULL on steps written before this version.

ALTER TABLE steps ADD COLUMN instance text;
ALTER TABLE steps ADD COLUMN sent json;
