-- +goose Up
-- +goose StatementBegin
-- 0003: the entry lifecycle (objections, repairs, exits, derived entries),
-- bitemporal history of entries, and violation records.

-- Repairs, exits, derivation trail, revocation cause and flags of an entry,
-- as one JSON object (objections stay in their own column).
ALTER TABLE entries ADD COLUMN lifecycle jsonb NOT NULL DEFAULT '{}';

-- Every version of every entry, with the time credgate recorded it
-- (recorded_at = the entry's updated_at when it was written). "What
-- credgate knew at T" is, per entry, the highest version recorded at or
-- before T. Rows are written by triggers, so that every writer of entries
-- (the API, imports, upstream sources) leaves its history, and are never
-- changed or deleted.
CREATE TABLE entry_versions (
    id                     text        NOT NULL,
    version                bigint      NOT NULL,
    recorded_at            timestamptz NOT NULL,
    subject                text        NOT NULL,
    subject_kind           text        NOT NULL,
    list                   text        NOT NULL,
    originating_department text        NOT NULL,
    reason                 text        NOT NULL,
    legal_basis            text        NOT NULL,
    evidence_refs          jsonb       NOT NULL,
    decided_at             timestamptz NOT NULL,
    published_at           timestamptz NOT NULL,
    valid_until            timestamptz,
    revoked_at             timestamptz,
    revocation_reason      text        NOT NULL,
    objections             jsonb       NOT NULL,
    responsible_persons    jsonb       NOT NULL,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL,
    lifecycle              jsonb       NOT NULL,
    PRIMARY KEY (id, version)
);

CREATE INDEX entry_versions_subject ON entry_versions (subject, id);

-- Every (person, entry) pair ever linked, so that the entries that reached
-- a person in the past are found even after the person was removed.
CREATE TABLE entry_version_persons (
    person_id text NOT NULL,
    entry_id  text NOT NULL,
    PRIMARY KEY (person_id, entry_id)
);

-- History starts here: existing entries get their current version.
INSERT INTO entry_versions (id, version, recorded_at, subject, subject_kind, list, originating_department,
    reason, legal_basis, evidence_refs, decided_at, published_at, valid_until, revoked_at, revocation_reason,
    objections, responsible_persons, created_at, updated_at, lifecycle)
SELECT id, version, updated_at, subject, subject_kind, list, originating_department, reason, legal_basis,
    evidence_refs, decided_at, published_at, valid_until, revoked_at, revocation_reason, objections,
    responsible_persons, created_at, updated_at, lifecycle
FROM entries;
INSERT INTO entry_version_persons (person_id, entry_id)
SELECT DISTINCT person_id, entry_id FROM entry_persons ON CONFLICT DO NOTHING;

-- An update that does not bump the version would rewrite history: the
-- primary key refuses it, and with it the update. The functions keep the
-- search_path they were created with, so that a writer connected with
-- another one (an administrative session on a schema-qualified table)
-- still writes this schema's history.
CREATE FUNCTION entries_record_version() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO entry_versions (id, version, recorded_at, subject, subject_kind, list, originating_department,
        reason, legal_basis, evidence_refs, decided_at, published_at, valid_until, revoked_at, revocation_reason,
        objections, responsible_persons, created_at, updated_at, lifecycle)
    VALUES (NEW.id, NEW.version, NEW.updated_at, NEW.subject, NEW.subject_kind, NEW.list, NEW.originating_department,
        NEW.reason, NEW.legal_basis, NEW.evidence_refs, NEW.decided_at, NEW.published_at, NEW.valid_until,
        NEW.revoked_at, NEW.revocation_reason, NEW.objections, NEW.responsible_persons, NEW.created_at,
        NEW.updated_at, NEW.lifecycle);
    RETURN NULL;
END;
$$;

CREATE TRIGGER entries_version AFTER INSERT OR UPDATE ON entries
    FOR EACH ROW EXECUTE FUNCTION entries_record_version();

CREATE FUNCTION entry_persons_record_version() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO entry_version_persons (person_id, entry_id) VALUES (NEW.person_id, NEW.entry_id)
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;

CREATE TRIGGER entry_persons_version AFTER INSERT ON entry_persons
    FOR EACH ROW EXECUTE FUNCTION entry_persons_record_version();

CREATE FUNCTION lifecycle_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER entry_versions_append_only BEFORE UPDATE OR DELETE ON entry_versions
    FOR EACH ROW EXECUTE FUNCTION lifecycle_append_only();
CREATE TRIGGER entry_versions_no_truncate BEFORE TRUNCATE ON entry_versions
    FOR EACH STATEMENT EXECUTE FUNCTION lifecycle_append_only();

-- Objections, repairs and exit applications of entries, rewritten with the
-- entry by the lifecycle writes: open ones (closed_at NULL) are listed, and
-- an id leads to its entry.
CREATE TABLE entry_proceedings (
    id        text        NOT NULL PRIMARY KEY,
    entry_id  text        NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
    kind      text        NOT NULL,
    opened_at timestamptz NOT NULL,
    due_at    timestamptz,
    closed_at timestamptz
);

CREATE INDEX entry_proceedings_entry ON entry_proceedings (entry_id);
CREATE INDEX entry_proceedings_open ON entry_proceedings (kind, id) WHERE closed_at IS NULL;

-- Violation records (不良信用记录): append-only. decided_at is when the
-- penalty was decided (valid time), recorded_at when credgate learnt it.
CREATE TABLE violation_records (
    id                   text        NOT NULL PRIMARY KEY,
    subject              text        NOT NULL,
    subject_kind         text        NOT NULL,
    rule_set             text        NOT NULL,
    item                 text        NOT NULL,
    severity             text        NOT NULL,
    decided_at           timestamptz NOT NULL,
    recorded_at          timestamptz NOT NULL,
    department           text        NOT NULL,
    reference            text        NOT NULL,
    evidence_refs        jsonb       NOT NULL DEFAULT '[]',
    particularly_serious boolean     NOT NULL DEFAULT false
);

CREATE INDEX violation_records_subject ON violation_records (subject, decided_at, id);

CREATE TRIGGER violation_records_append_only BEFORE UPDATE OR DELETE ON violation_records
    FOR EACH ROW EXECUTE FUNCTION lifecycle_append_only();
CREATE TRIGGER violation_records_no_truncate BEFORE TRUNCATE ON violation_records
    FOR EACH STATEMENT EXECUTE FUNCTION lifecycle_append_only();
-- +goose StatementEnd
