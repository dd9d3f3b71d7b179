-- +goose Up
-- +goose StatementBegin
-- 0009: bulk loads staged and swapped in whole; screening jobs.
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

-- Screening jobs: a partner's file of subjects checked for one action.
-- The file and the results live in the server's data dir (they are large
-- and written once, in order); this row is the job's durable progress: a
-- restarted server resumes every job queued or running from done (the
-- subjects screened) and results_bytes (the results written durably).
CREATE TABLE screening_jobs (
    id            TEXT        NOT NULL PRIMARY KEY,
    partner       TEXT        NOT NULL,
    caller        TEXT        NOT NULL,
    action        TEXT        NOT NULL,
    format        TEXT        NOT NULL,
    state         TEXT        NOT NULL,
    total         INTEGER     NOT NULL,
    done          INTEGER     NOT NULL,
    results_bytes INTEGER     NOT NULL,
    counts        TEXT        NOT NULL,
    tree_size     INTEGER     NOT NULL,
    root          TEXT        NOT NULL,
    record_id     TEXT        NOT NULL,
    error         TEXT        NOT NULL,
    created_at    INTEGER     NOT NULL,
    updated_at    INTEGER     NOT NULL
) STRICT;

CREATE INDEX screening_jobs_unfinished ON screening_jobs (created_at, id) WHERE state IN ('queued', 'running');
-- +goose StatementEnd
