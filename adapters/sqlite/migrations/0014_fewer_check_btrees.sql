-- +goose Up
-- +goose StatementBegin
-- 0014: fewer B-trees written per check. Each index a commit writes is at
-- least one more page in the WAL and synced, for every group commit; the
-- rows derived from checks (0010, 0011) had eight of them beside the log's.
--
-- check_index is keyed by idx, the record's position (its rowid), instead of
-- by a text check_id with an index on idx beside it: two B-trees fewer. A
-- check is found by id through the log's own unique index on evidence.id
-- (check_id is the record's id), see Dialect.CheckByID.
CREATE TABLE check_index_0014 (
    check_id   TEXT    NOT NULL,
    idx        INTEGER NOT NULL PRIMARY KEY,
    partner    TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    outcome    TEXT    NOT NULL,
    region     TEXT    NOT NULL,
    checked_at INTEGER NOT NULL
) STRICT;

INSERT INTO check_index_0014 (check_id, idx, partner, subject, action, outcome, region, checked_at)
SELECT check_id, idx, partner, subject, action, outcome, region, checked_at FROM check_index ORDER BY idx;

DROP TABLE check_index;
ALTER TABLE check_index_0014 RENAME TO check_index;

-- The same indexes as 0010 but check_index_idx (the key now).
CREATE INDEX check_index_subject ON check_index (subject, action, checked_at);
CREATE INDEX check_index_action ON check_index (action, checked_at);
CREATE INDEX check_index_partner ON check_index (partner, checked_at);
CREATE INDEX check_index_time ON check_index (checked_at);

-- No query reads check_lists by list first: statistics by list join it on
-- check_id (its key) from the checks of a period.
DROP INDEX check_lists_list;

-- checked_subjects_at moved on every check of a subject already checked (a
-- random page of the index per check). Only pruning reads it, so it now
-- indexes checked_floor: a time never later than checked_at, set when the
-- row is inserted and raised only by pruning, which finds every row checked
-- before a time among those whose floor is before it and raises the floor of
-- those it keeps to their checked_at.
ALTER TABLE checked_subjects ADD COLUMN checked_floor INTEGER NOT NULL DEFAULT 0;
UPDATE checked_subjects SET checked_floor = checked_at;
DROP INDEX checked_subjects_at;
CREATE INDEX checked_subjects_floor ON checked_subjects (checked_floor);
-- +goose StatementEnd
