-- +goose Up
-- +goose StatementBegin
-- 0017: evidence_kind (0004) is read for administrative acts (GET
-- /v1/admin/acts, RecordsOfKind), never for checks, yet every check
-- appended paid an insert into it: one of the log's three index inserts per
-- check, about 3 % of the WAL a check writes. It now holds the records that
-- are not checks; RecordsOfKind names the kind in its text, so that the
-- planner can tell the index covers it. Building it scans the log once.
DROP INDEX evidence_kind;
CREATE INDEX evidence_kind ON evidence (kind, idx) WHERE kind <> 'check';
-- +goose StatementEnd
