-- +goose Up
-- +goose StatementBegin
-- credgate schema, SQLite flavour. Times are INTEGER microseconds since the
-- Unix epoch (UTC); repeated fields are JSON arrays stored as TEXT.

CREATE TABLE entries (
    id                     TEXT    NOT NULL PRIMARY KEY,
    subject                TEXT    NOT NULL,
    subject_kind           TEXT    NOT NULL,
    list                   TEXT    NOT NULL,
    originating_department TEXT    NOT NULL,
    reason                 TEXT    NOT NULL,
    legal_basis            TEXT    NOT NULL,
    evidence_refs          TEXT    NOT NULL DEFAULT '[]',
    decided_at             INTEGER NOT NULL,
    published_at           INTEGER NOT NULL,
    valid_until            INTEGER,
    revoked_at             INTEGER,
    revocation_reason      TEXT    NOT NULL DEFAULT '',
    objections             TEXT    NOT NULL DEFAULT '[]',
    responsible_persons    TEXT    NOT NULL DEFAULT '[]',
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL,
    version                INTEGER NOT NULL
) STRICT;

CREATE INDEX entries_subject ON entries (subject, id);
CREATE INDEX entries_list ON entries (list, id);

-- One row per (entry, responsible person, role), rewritten with the entry,
-- so that the entries reaching a person are an indexed lookup.
CREATE TABLE entry_persons (
    entry_id  TEXT NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
    person_id TEXT NOT NULL,
    role      TEXT NOT NULL,
    PRIMARY KEY (entry_id, person_id, role)
) STRICT, WITHOUT ROWID;

CREATE INDEX entry_persons_person ON entry_persons (person_id, entry_id);

CREATE TABLE partners (
    id          TEXT    NOT NULL PRIMARY KEY,
    client_id   TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    role        TEXT    NOT NULL,
    actions     TEXT    NOT NULL DEFAULT '[]',
    secret_hash TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    version     INTEGER NOT NULL
) STRICT;

-- The evidence log. idx is the record's position, assigned consecutively
-- from 0 by the single writer.
CREATE TABLE evidence (
    idx     INTEGER NOT NULL PRIMARY KEY CHECK (idx >= 0),
    id      TEXT    NOT NULL UNIQUE,
    kind    TEXT    NOT NULL,
    partner TEXT    NOT NULL,
    at      INTEGER NOT NULL,
    body    BLOB    NOT NULL,
    salt    BLOB    NOT NULL,
    hash    BLOB    NOT NULL CHECK (length(hash) = 32)
) STRICT;

-- The log is append-only: rows are never deleted and what the log commits
-- to (position, id, kind, caller, time, hash) never changes. Body and salt
-- stay updatable so that personal data can be erased later.
CREATE TRIGGER evidence_no_delete BEFORE DELETE ON evidence
BEGIN
    SELECT RAISE(ABORT, 'evidence is append-only');
END;

CREATE TRIGGER evidence_no_rewrite BEFORE UPDATE OF idx, id, kind, partner, at, hash ON evidence
BEGIN
    SELECT RAISE(ABORT, 'evidence is append-only');
END;
-- +goose StatementEnd
