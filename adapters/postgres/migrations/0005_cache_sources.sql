-- +goose Up
-- +goose StatementBegin
-- Cache invalidation and upstream sources.
--
-- subject_changes is an append-only log of the subjects whose answers an
-- entry change can alter (an entry's subject and its responsible persons),
-- written by triggers so that every writer is covered: the API, imports,
-- upstream sources, a bulk load. Each row carries the id of the writing
-- transaction; a cache reads the rows whose xid is at or after the xmin of
-- its previous reading's snapshot, which covers every transaction that
-- commits after that reading (however long it ran), and drops what it holds
-- about those subjects. It is append-only, not one row per subject, so that
-- concurrent writers never wait on (or deadlock over) each other's rows.
CREATE TABLE subject_changes (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject    text        NOT NULL,
    xid        xid8        NOT NULL DEFAULT pg_current_xact_id(),
    changed_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX subject_changes_xid ON subject_changes (xid);

-- The highest xid below which rows have been pruned: a cache whose cursor
-- is below it may have missed changes and must drop everything.
CREATE TABLE subject_changes_pruned (
    one bool NOT NULL PRIMARY KEY DEFAULT true CHECK (one),
    xid xid8 NOT NULL
);
INSERT INTO subject_changes_pruned (xid) VALUES ('0');

-- The functions keep the search_path they were created with, so that a
-- writer whose session looks elsewhere (a tool using qualified names) still
-- logs into this schema's table.
CREATE FUNCTION note_entry_change() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO subject_changes (subject) VALUES (NEW.subject);
    END IF;
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.subject <> NEW.subject) THEN
        INSERT INTO subject_changes (subject) VALUES (OLD.subject);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER entries_note_change AFTER INSERT OR UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION note_entry_change();

-- An update rewrites the entry's person links (delete, insert), so a person
-- who is dropped from an entry and one who is added are both noted.
CREATE FUNCTION note_person_change() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO subject_changes (subject) VALUES (OLD.person_id);
    ELSE
        INSERT INTO subject_changes (subject) VALUES (NEW.person_id);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER entry_persons_note_change AFTER INSERT OR DELETE ON entry_persons
    FOR EACH ROW EXECUTE FUNCTION note_person_change();

-- Upstream sources (data feeds, platforms) and the entries each delivered.
-- revision identifies the snapshot applied; synced_at is the last time
-- upstream confirmed it (answers resting on the source are as old as that).
CREATE TABLE sources (
    name          text        NOT NULL PRIMARY KEY,
    revision      text        NOT NULL DEFAULT '',
    entries       integer     NOT NULL DEFAULT 0,
    applied_at    timestamptz,
    synced_at     timestamptz,
    last_error    text        NOT NULL DEFAULT '',
    last_error_at timestamptz
);

-- One row per item of a source's current snapshot. item_id is derived from
-- the item's content (and upstream key); entry_id is the entry holding it.
-- Items that leave the snapshot are deleted here and their entries revoked:
-- the record stays, the measures stop.
CREATE TABLE source_items (
    source   text NOT NULL REFERENCES sources (name),
    item_id  text NOT NULL,
    entry_id text NOT NULL REFERENCES entries (id),
    PRIMARY KEY (source, item_id)
);
-- +goose StatementEnd
