-- +goose Up
-- +goose StatementBegin
-- Cache invalidation and upstream sources.
--
-- subject_changes is an append-only log of the subjects whose answers an
-- entry change can alter (an entry's subject and its responsible persons),
-- written by triggers so that every writer is covered (the API, imports,
-- upstream sources, another process on the same file). SQLite has one
-- writer at a time, so seq grows in commit order: a cache reads the rows
-- after the last seq it saw and drops what it holds about those subjects.
CREATE TABLE subject_changes (
    seq        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    subject    TEXT    NOT NULL,
    changed_at INTEGER NOT NULL
) STRICT;

-- The highest seq pruned: a cache whose cursor is below it may have missed
-- changes and must drop everything.
CREATE TABLE subject_changes_pruned (
    one INTEGER NOT NULL PRIMARY KEY CHECK (one = 1),
    seq INTEGER NOT NULL
) STRICT;
INSERT INTO subject_changes_pruned (one, seq) VALUES (1, 0);

CREATE TRIGGER entries_note_insert AFTER INSERT ON entries BEGIN
    INSERT INTO subject_changes (subject, changed_at) VALUES (NEW.subject, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER));
END;

CREATE TRIGGER entries_note_update AFTER UPDATE ON entries BEGIN
    INSERT INTO subject_changes (subject, changed_at) VALUES (NEW.subject, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER));
    INSERT INTO subject_changes (subject, changed_at)
        SELECT OLD.subject, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER) WHERE OLD.subject <> NEW.subject;
END;

CREATE TRIGGER entries_note_delete AFTER DELETE ON entries BEGIN
    INSERT INTO subject_changes (subject, changed_at) VALUES (OLD.subject, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER));
END;

-- An update rewrites the entry's person links (delete, insert), so a person
-- who is dropped from an entry and one who is added are both noted.
CREATE TRIGGER entry_persons_note_insert AFTER INSERT ON entry_persons BEGIN
    INSERT INTO subject_changes (subject, changed_at) VALUES (NEW.person_id, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER));
END;

CREATE TRIGGER entry_persons_note_delete AFTER DELETE ON entry_persons BEGIN
    INSERT INTO subject_changes (subject, changed_at) VALUES (OLD.person_id, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER));
END;

-- Upstream sources (data feeds, platforms) and the entries each delivered.
-- revision identifies the snapshot applied; synced_at is the last time
-- upstream confirmed it (answers resting on the source are as old as that).
CREATE TABLE sources (
    name          TEXT    NOT NULL PRIMARY KEY,
    revision      TEXT    NOT NULL DEFAULT '',
    entries       INTEGER NOT NULL DEFAULT 0,
    applied_at    INTEGER,
    synced_at     INTEGER,
    last_error    TEXT    NOT NULL DEFAULT '',
    last_error_at INTEGER
) STRICT;

-- One row per item of a source's current snapshot. item_id is derived from
-- the item's content (and upstream key); entry_id is the entry holding it.
-- Items that leave the snapshot are deleted here and their entries revoked:
-- the record stays, the measures stop.
CREATE TABLE source_items (
    source   TEXT NOT NULL REFERENCES sources (name),
    item_id  TEXT NOT NULL,
    entry_id TEXT NOT NULL REFERENCES entries (id),
    PRIMARY KEY (source, item_id)
) STRICT, WITHOUT ROWID;
-- +goose StatementEnd
