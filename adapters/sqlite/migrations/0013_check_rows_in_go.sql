-- +goose Up
-- +goose StatementBegin
-- 0013: the rows derived from check records (check_index and check_lists
-- of 0010, checked_subjects of 0011) are written by the store itself, in
-- the transaction that appends the records, as multi-row inserts per batch
-- (adapters/internal/sqlcommon/checkrows.go), instead of by two row
-- triggers. SQLite has no statement triggers, so those re-parsed every
-- check's JSON body several times per record, and were most of the cost of
-- the evidence commit. What is derived, and from which records, is
-- unchanged; the rows already derived stay. Feedback and commitments keep
-- their triggers (rare records, and a commitment's update depends on the
-- order of its records).
DROP TRIGGER evidence_index_check;
DROP TRIGGER evidence_check_subject;
-- +goose StatementEnd
