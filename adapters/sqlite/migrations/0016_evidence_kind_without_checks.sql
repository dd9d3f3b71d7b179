-- +goose Up
-- +goose StatementBegin
-- 0016: evidence_kind (0004) is read for the records of a kind that is not
-- a check (administrative acts, RecordsOfKind); the checks of a period are
-- read by idx, the table's key. Yet every check paid an entry in it: 2 of
-- a group commit's ~57 WAL frames at saturation. It now holds the records
-- that are not checks, as PostgreSQL's since its 0017. SQLite uses a
-- partial index only for a query that states the index's condition, which
-- RecordsOfKind's text does for any other kind. Building it scans the log
-- once.
DROP INDEX evidence_kind;
CREATE INDEX evidence_kind ON evidence (kind, idx) WHERE kind <> 'check';
-- +goose StatementEnd
