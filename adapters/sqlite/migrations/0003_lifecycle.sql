-- +goose Up
-- +goose StatementBegin
-- 0003: the entry lifecycle (objections, repairs, exits, derived entries),
-- bitemporal history of entries, and violation records.

-- Repairs, exits, derivation trail, revocation cause and flags of an entry,
-- as one JSON object (objections stay in their own column).
ALTER TABLE entries ADD COLUMN lifecycle TEXT NOT NULL DEFAULT '{}';

-- Every version of every entry, with the time credgate recorded it
-- (recorded_at = the entry's updated_at when it was written). "What
-- credgate knew at T" is, per entry, the highest version recorded at or
-- before T. Rows are written by triggers, so that every writer of entries
-- (the API, imports, upstream sources) leaves its history, and are never
-- changed or deleted.
CREATE TABLE entry_versions (
    id                     TEXT    NOT NULL,
    version                INTEGER NOT NULL,
    recorded_at            INTEGER NOT NULL,
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
    lifecycle              TEXT    NOT NULL,
    PRIMARY KEY (id, version)
) STRICT;

CREATE INDEX entry_versions_subject ON entry_versions (subject, id);
CREATE INDEX entry_versions_recorded ON entry_versions (id, recorded_at, version);

-- Every (person, entry) pair ever linked, so that the entries that reached
-- a person in the past are found even after the person was removed.
CREATE TABLE entry_version_persons (
    person_id TEXT NOT NULL,
    entry_id  TEXT NOT NULL,
    PRIMARY KEY (person_id, entry_id)
) STRICT, WITHOUT ROWID;

-- History starts here: existing entries get their current version.
INSERT INTO entry_versions (id, version, recorded_at, subject, subject_kind, list, originating_department,
    reason, legal_basis, evidence_refs, decided_at, published_at, valid_until, revoked_at, revocation_reason,
    objections, responsible_persons, created_at, updated_at, lifecycle)
SELECT id, version, updated_at, subject, subject_kind, list, originating_department, reason, legal_basis,
    evidence_refs, decided_at, published_at, valid_until, revoked_at, revocation_reason, objections,
    responsible_persons, created_at, updated_at, lifecycle
FROM entries;
INSERT OR IGNORE INTO entry_version_persons (person_id, entry_id) SELECT person_id, entry_id FROM entry_persons;

CREATE TRIGGER entries_version_insert AFTER INSERT ON entries BEGIN
    INSERT INTO entry_versions (id, version, recorded_at, subject, subject_kind, list, originating_department,
        reason, legal_basis, evidence_refs, decided_at, published_at, valid_until, revoked_at, revocation_reason,
        objections, responsible_persons, created_at, updated_at, lifecycle)
    VALUES (NEW.id, NEW.version, NEW.updated_at, NEW.subject, NEW.subject_kind, NEW.list, NEW.originating_department,
        NEW.reason, NEW.legal_basis, NEW.evidence_refs, NEW.decided_at, NEW.published_at, NEW.valid_until,
        NEW.revoked_at, NEW.revocation_reason, NEW.objections, NEW.responsible_persons, NEW.created_at,
        NEW.updated_at, NEW.lifecycle);
END;

-- An update that does not bump the version would rewrite history: the
-- primary key refuses it, and with it the update.
CREATE TRIGGER entries_version_update AFTER UPDATE ON entries BEGIN
    INSERT INTO entry_versions (id, version, recorded_at, subject, subject_kind, list, originating_department,
        reason, legal_basis, evidence_refs, decided_at, published_at, valid_until, revoked_at, revocation_reason,
        objections, responsible_persons, created_at, updated_at, lifecycle)
    VALUES (NEW.id, NEW.version, NEW.updated_at, NEW.subject, NEW.subject_kind, NEW.list, NEW.originating_department,
        NEW.reason, NEW.legal_basis, NEW.evidence_refs, NEW.decided_at, NEW.published_at, NEW.valid_until,
        NEW.revoked_at, NEW.revocation_reason, NEW.objections, NEW.responsible_persons, NEW.created_at,
        NEW.updated_at, NEW.lifecycle);
END;

CREATE TRIGGER entry_persons_version AFTER INSERT ON entry_persons BEGIN
    INSERT OR IGNORE INTO entry_version_persons (person_id, entry_id) VALUES (NEW.person_id, NEW.entry_id);
END;

CREATE TRIGGER entry_versions_no_update BEFORE UPDATE ON entry_versions BEGIN
    SELECT RAISE(ABORT, 'entry history is append-only');
END;
CREATE TRIGGER entry_versions_no_delete BEFORE DELETE ON entry_versions BEGIN
    SELECT RAISE(ABORT, 'entry history is append-only');
END;

-- Objections, repairs and exit applications of entries, rewritten with the
-- entry by the lifecycle writes: open ones (closed_at NULL) are listed, and
-- an id leads to its entry.
CREATE TABLE entry_proceedings (
    id        TEXT    NOT NULL PRIMARY KEY,
    entry_id  TEXT    NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
    kind      TEXT    NOT NULL,
    opened_at INTEGER NOT NULL,
    due_at    INTEGER,
    closed_at INTEGER
) STRICT;

CREATE INDEX entry_proceedings_entry ON entry_proceedings (entry_id);
CREATE INDEX entry_proceedings_open ON entry_proceedings (kind, id) WHERE closed_at IS NULL;

-- Violation records (不良信用记录): append-only. decided_at is when the
-- penalty was decided (valid time), recorded_at when credgate learnt it.
CREATE TABLE violation_records (
    id                   TEXT    NOT NULL PRIMARY KEY,
    subject              TEXT    NOT NULL,
    subject_kind         TEXT    NOT NULL,
    rule_set             TEXT    NOT NULL,
    item                 TEXT    NOT NULL,
    severity             TEXT    NOT NULL,
    decided_at           INTEGER NOT NULL,
    recorded_at          INTEGER NOT NULL,
    department           TEXT    NOT NULL,
    reference            TEXT    NOT NULL,
    evidence_refs        TEXT    NOT NULL DEFAULT '[]',
    particularly_serious INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX violation_records_subject ON violation_records (subject, decided_at, id);

CREATE TRIGGER violation_records_no_update BEFORE UPDATE ON violation_records BEGIN
    SELECT RAISE(ABORT, 'violation records are append-only');
END;
CREATE TRIGGER violation_records_no_delete BEFORE DELETE ON violation_records BEGIN
    SELECT RAISE(ABORT, 'violation records are append-only');
END;
-- +goose StatementEnd
