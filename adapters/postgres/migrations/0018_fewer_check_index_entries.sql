-- +goose Up
-- +goose StatementBegin
-- 0018: fewer B-tree entries written per check. Index inserts were about a
-- third of PostgreSQL's CPU per check (perf of the appending backends), the
-- rows derived from checks (0010, 0011) eight of the twelve entries a check
-- wrote. What each index served is in PERFORMANCE.md; the plan test
-- (plans_internal_test.go) holds every reader to an index and every index
-- to a reader.
--
-- Replicas of the previous release keep working against this schema: what
-- they write is accepted as before (checked_floor has a default), and what
-- they read is answered, only some reads without their old index
-- (a check by id, the pruning). The new indexes are built under the
-- table's lock, so appends wait while check_index is indexed again.
--
-- check_index is keyed by idx, the record's position, instead of by the
-- text check_id with check_index_idx beside it: one B-tree fewer, and the
-- one left is append-ordered. A check is found by id through the log's own
-- unique index on evidence.id (check_id is the record's id), see the
-- dialect's CheckByID; ids stay unique there, positions here.
--
-- The tables this changes are locked first, all of them, in the order the
-- previous release's appenders take them: evidence (the INSERT), then its
-- statement trigger's checked_subjects, check_index and check_lists (0016;
-- the store's own writes, 0016's 'written' path, take evidence first
-- too). Altered one by one in the order below, check_index first, this
-- deadlocked with an old replica whose append held evidence and
-- checked_subjects and waited for check_index. Locked evidence first, an
-- append either finished before (holding evidence, it gets the others) or
-- waits at its INSERT until this commits.
LOCK TABLE evidence, checked_subjects, check_index, check_lists IN ACCESS EXCLUSIVE MODE;

ALTER TABLE check_index DROP CONSTRAINT check_index_pkey;
ALTER TABLE check_index ADD CONSTRAINT check_index_pkey PRIMARY KEY (idx);
DROP INDEX check_index_idx;

-- checked_at follows the log's order (a check's time, appended as it is
-- answered), and statistics read it by period: a BRIN index answers that
-- with a summary per 128 pages instead of an entry per check.
-- autosummarize: autovacuum summarizes each range as it fills; a range not
-- summarized yet is read whole, never missed.
DROP INDEX check_index_time;
CREATE INDEX check_index_time ON check_index USING brin (checked_at) WITH (autosummarize = on);

-- check_index_action (action, checked_at) served one read only, the
-- overdue counts of a statistics period, which always run right after that
-- period's statistics (service.Stats.groups): those read every check of the
-- period through check_index_time or check_index_partner, and the overdue
-- counts, reading the same checks the same way, cost no more. Overdue
-- listings go in log order (the key). Coverage has check_index_subject.
DROP INDEX check_index_action;

-- No query reads check_lists by list first: statistics by list join it on
-- check_id (its key) from the checks of a period.
DROP INDEX check_lists_list;

-- checked_subjects_at moved on every repeat check of a subject, so that
-- update was never HOT: a new heap tuple and two index entries each time.
-- Only pruning reads it, so it now indexes checked_floor, a time never
-- later than checked_at that only pruning raises (as SQLite's 0014): pruning
-- finds the rows checked before a time among those whose floor is before
-- it, and raises the floor of those it keeps to their checked_at. Rows come
-- in with the floor at -infinity (whoever writes them: the store, the
-- trigger), so the first pruning after a row's insert reads it. With no
-- indexed column changed and room left on the page (fillfactor), a repeat
-- check's update is HOT: no index entry at all.
ALTER TABLE checked_subjects ADD COLUMN checked_floor timestamptz NOT NULL DEFAULT '-infinity';
DROP INDEX checked_subjects_at;
CREATE INDEX checked_subjects_floor ON checked_subjects (checked_floor);
ALTER TABLE checked_subjects SET (fillfactor = 70);

-- Not an index, the other per-check cost the profile showed: a tenth of
-- the bodies (checks that applied measures) make a row over TOAST's 2 KB
-- threshold and were compressed with pglz, about 3.5 % of the appending
-- backend's CPU. lz4 compresses them several times faster to about the
-- same size; rows already written stay as they are (both are read). A
-- server built without lz4 keeps pglz.
DO $$
BEGIN
    ALTER TABLE evidence ALTER COLUMN body SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    NULL;
END
$$;
-- +goose StatementEnd
