-- +goose Up
-- +goose StatementBegin
-- 0009: bulk loads staged and swapped in whole.
--
-- A bulk load first writes its entries here in short transactions (so that
-- checks' evidence commits go on between them), then moves them into
-- entries in one transaction when the whole file is good and its act is
-- recorded, and deletes them. entry_loads remembers each load so that a
-- later one clears what a crashed one left.
CREATE TABLE entry_loads (
    id         TEXT    NOT NULL PRIMARY KEY,
    started_at INTEGER NOT NULL
) STRICT;

CREATE TABLE entry_load_entries (
    load_id                TEXT    NOT NULL,
    id                     TEXT    NOT NULL,
    subject                TEXT    NOT NULL,
    subject_kind           TEXT    NOT NULL,
    list                   TEXT    NOT NULL,
    originating_department TEXT    NOT NULL,
    reason                 TEXT    NOT NULL,
    legal_basis            TEXT    NOT NULL,
    evidence_refs          TEXT    NOT NULL,
    decided_at             INTEGER NOT NULL,
    published_at           INTEGER NOT NULL,
    valid_until            INTEGER,
    revoked_at             INTEGER,
    revocation_reason      TEXT    NOT NULL,
    objections             TEXT    NOT NULL,
    responsible_persons    TEXT    NOT NULL,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL,
    version                INTEGER NOT NULL,
    lifecycle              TEXT    NOT NULL
) STRICT;

CREATE INDEX entry_load_entries_load ON entry_load_entries (load_id);

CREATE TABLE entry_load_persons (
    load_id   TEXT NOT NULL,
    entry_id  TEXT NOT NULL,
    person_id TEXT NOT NULL,
    role      TEXT NOT NULL
) STRICT;

CREATE INDEX entry_load_persons_load ON entry_load_persons (load_id);
-- +goose StatementEnd
