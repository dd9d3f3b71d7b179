-- +goose Up
-- +goose StatementBegin
-- 0024: a screening job is run by the holder of its lease only. Replicas
-- sharing a database each listed every unfinished job and ran it: two
-- could run one job at once, or one fail a job whose files were on
-- another's disk. A runner (a random id per process) claims a job with a
-- conditional update while runner is '' or lease_until has passed, renews
-- it every batch, and clears it when the job stops; a runner that died
-- leaves its jobs to any other once lease_until passes.
ALTER TABLE screening_jobs ADD COLUMN runner text NOT NULL DEFAULT '';
ALTER TABLE screening_jobs ADD COLUMN lease_until timestamptz;
-- +goose StatementEnd
