-- +goose Up
-- +goose StatementBegin
-- credgate schema, PostgreSQL flavour. Times are timestamptz (microsecond
-- precision); repeated fields are jsonb arrays.

CREATE TABLE entries (
    id                     text        NOT NULL PRIMARY KEY,
    subject                text        NOT NULL,
    subject_kind           text        NOT NULL,
    list                   text        NOT NULL,
    originating_department text        NOT NULL,
    reason                 text        NOT NULL,
    legal_basis            text        NOT NULL,
    evidence_refs          jsonb       NOT NULL DEFAULT '[]',
    decided_at             timestamptz NOT NULL,
    published_at           timestamptz NOT NULL,
    valid_until            timestamptz,
    revoked_at             timestamptz,
    revocation_reason      text        NOT NULL DEFAULT '',
    objections             jsonb       NOT NULL DEFAULT '[]',
    responsible_persons    jsonb       NOT NULL DEFAULT '[]',
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL,
    version                bigint      NOT NULL
);

CREATE INDEX entries_subject ON entries (subject, id);
CREATE INDEX entries_list ON entries (list, id);

-- One row per (entry, responsible person, role), rewritten with the entry,
-- so that the entries reaching a person are an indexed lookup.
CREATE TABLE entry_persons (
    entry_id  text NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
    person_id text NOT NULL,
    role      text NOT NULL,
    PRIMARY KEY (entry_id, person_id, role)
);

CREATE INDEX entry_persons_person ON entry_persons (person_id, entry_id);

CREATE TABLE partners (
    id          text        NOT NULL PRIMARY KEY,
    client_id   text        NOT NULL UNIQUE,
    name        text        NOT NULL,
    role        text        NOT NULL,
    actions     jsonb       NOT NULL DEFAULT '[]',
    secret_hash text        NOT NULL,
    status      text        NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    version     bigint      NOT NULL
);

-- The evidence log. idx is the record's position, assigned consecutively
-- from 0 by appenders serialised on an advisory lock.
CREATE TABLE evidence (
    idx     bigint      NOT NULL PRIMARY KEY CHECK (idx >= 0),
    id      text        NOT NULL UNIQUE,
    kind    text        NOT NULL,
    partner text        NOT NULL,
    at      timestamptz NOT NULL,
    body    bytea       NOT NULL,
    salt    bytea       NOT NULL,
    hash    bytea       NOT NULL CHECK (octet_length(hash) = 32)
);

-- The log is append-only: rows are never deleted and what the log commits
-- to (position, id, kind, caller, time, hash) never changes. Body and salt
-- stay updatable so that personal data can be erased later.
CREATE FUNCTION evidence_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF (NEW.idx, NEW.id, NEW.kind, NEW.partner, NEW.at, NEW.hash)
            IS DISTINCT FROM (OLD.idx, OLD.id, OLD.kind, OLD.partner, OLD.at, OLD.hash) THEN
            RAISE EXCEPTION 'evidence is append-only' USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'evidence is append-only' USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER evidence_no_rewrite BEFORE UPDATE OR DELETE ON evidence
    FOR EACH ROW EXECUTE FUNCTION evidence_append_only();

CREATE TRIGGER evidence_no_truncate BEFORE TRUNCATE ON evidence
    FOR EACH STATEMENT EXECUTE FUNCTION evidence_append_only();
-- +goose StatementEnd
