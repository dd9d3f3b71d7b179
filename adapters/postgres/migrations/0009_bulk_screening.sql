-- +goose Up
-- +goose StatementBegin
-- 0009: bulk loads staged and swapped in whole; screening jobs.
--
-- A bulk load first copies its entries here (COPY, in chunks, outside any
-- long transaction), then moves them into entries in one transaction when
-- the whole file is good and its act is recorded, and deletes them. The
-- staging tables are UNLOGGED: a crash loses a load that was never applied,
-- which is what all or nothing asks; entry_loads remembers the load so that
-- a later one clears what it left.
CREATE TABLE entry_loads (
    id         text        NOT NULL PRIMARY KEY,
    started_at timestamptz NOT NULL
);

CREATE UNLOGGED TABLE entry_load_entries (
    load_id                text        NOT NULL,
    id                     text        NOT NULL,
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
    version                bigint      NOT NULL,
    lifecycle              jsonb       NOT NULL
);

CREATE INDEX entry_load_entries_load ON entry_load_entries (load_id);

CREATE UNLOGGED TABLE entry_load_persons (
    load_id   text NOT NULL,
    entry_id  text NOT NULL,
    person_id text NOT NULL,
    role      text NOT NULL
);

CREATE INDEX entry_load_persons_load ON entry_load_persons (load_id);

-- History and the change log of inserted entries and person links are
-- written once per statement from its transition table, not by a PL/pgSQL
-- call per row: a bulk load's swap inserts millions of rows in one
-- statement, and the per-row calls were most of its time. Updates and
-- deletes keep their row triggers (they need OLD and NEW of each row).
CREATE FUNCTION entries_record_versions() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO entry_versions (id, version, recorded_at, subject, subject_kind, list, originating_department,
        reason, legal_basis, evidence_refs, decided_at, published_at, valid_until, revoked_at, revocation_reason,
        objections, responsible_persons, created_at, updated_at, lifecycle)
    SELECT id, version, updated_at, subject, subject_kind, list, originating_department,
        reason, legal_basis, evidence_refs, decided_at, published_at, valid_until,
        revoked_at, revocation_reason, objections, responsible_persons, created_at,
        updated_at, lifecycle FROM new_entries;
    RETURN NULL;
END;
$$;
DROP TRIGGER entries_version ON entries;
CREATE TRIGGER entries_version AFTER UPDATE ON entries
    FOR EACH ROW EXECUTE FUNCTION entries_record_version();
CREATE TRIGGER entries_version_insert AFTER INSERT ON entries REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION entries_record_versions();

CREATE FUNCTION entry_persons_record_versions() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO entry_version_persons (person_id, entry_id) SELECT DISTINCT person_id, entry_id FROM new_links
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;
DROP TRIGGER entry_persons_version ON entry_persons;
CREATE TRIGGER entry_persons_version AFTER INSERT ON entry_persons REFERENCING NEW TABLE AS new_links
    FOR EACH STATEMENT EXECUTE FUNCTION entry_persons_record_versions();

CREATE FUNCTION note_entries_inserted() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO subject_changes (subject) SELECT subject FROM new_entries;
    RETURN NULL;
END;
$$;
DROP TRIGGER entries_note_change ON entries;
CREATE TRIGGER entries_note_change AFTER UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION note_entry_change();
CREATE TRIGGER entries_note_insert AFTER INSERT ON entries REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION note_entries_inserted();

CREATE FUNCTION note_persons_inserted() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO subject_changes (subject) SELECT person_id FROM new_links;
    RETURN NULL;
END;
$$;
DROP TRIGGER entry_persons_note_change ON entry_persons;
CREATE TRIGGER entry_persons_note_change AFTER DELETE ON entry_persons
    FOR EACH ROW EXECUTE FUNCTION note_person_change();
CREATE TRIGGER entry_persons_note_insert AFTER INSERT ON entry_persons REFERENCING NEW TABLE AS new_links
    FOR EACH STATEMENT EXECUTE FUNCTION note_persons_inserted();

-- Screening jobs: a partner's file of subjects checked for one action.
-- The file and the results live in the server's data dir (they are large
-- and written once, in order); this row is the job's durable progress: a
-- restarted server resumes every job queued or running from done (the
-- subjects screened) and results_bytes (the results written durably).
CREATE TABLE screening_jobs (
    id            text        NOT NULL PRIMARY KEY,
    partner       text        NOT NULL,
    caller        jsonb       NOT NULL,
    action        text        NOT NULL,
    format        text        NOT NULL,
    state         text        NOT NULL,
    total         bigint      NOT NULL,
    done          bigint      NOT NULL,
    results_bytes bigint      NOT NULL,
    counts        jsonb       NOT NULL,
    tree_size     bigint      NOT NULL,
    root          text        NOT NULL,
    record_id     text        NOT NULL,
    error         text        NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

CREATE INDEX screening_jobs_unfinished ON screening_jobs (created_at, id) WHERE state IN ('queued', 'running');
-- +goose StatementEnd
