-- +goose Up
-- +goose StatementBegin
-- 0014: inserts into entries announce themselves once per statement.
--
-- The outbox row of an inserted entry is written from the statement's
-- transition table, as 0009 did for the history and the change log, not by
-- a PL/pgSQL call per row: a bulk load copies millions of rows, and a row
-- trigger also keeps COPY from inserting them in batches. Updates keep the
-- row trigger.
--
-- A bulk load past the size at which a cache drops everything anyway (it
-- reads at most a page of changes before it gives up on them one by one)
-- sets credgate.skip_subject_changes for its transaction and, instead of a
-- change row per subject, marks the change log pruned past itself, which
-- tells every cache to drop everything (adapters/internal/sqlcommon/bulk.go).
CREATE FUNCTION entries_note_events() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO event_outbox (entry_id, version, recorded_at)
    SELECT id, version, updated_at FROM new_entries;
    RETURN NULL;
END;
$$;
DROP TRIGGER entries_event ON entries;
CREATE TRIGGER entries_event AFTER UPDATE ON entries
    FOR EACH ROW EXECUTE FUNCTION entries_note_event();
CREATE TRIGGER entries_event_insert AFTER INSERT ON entries REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION entries_note_events();

CREATE OR REPLACE FUNCTION note_entries_inserted() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF current_setting('credgate.skip_subject_changes', true) IS DISTINCT FROM 'on' THEN
        INSERT INTO subject_changes (subject) SELECT subject FROM new_entries;
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION note_persons_inserted() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF current_setting('credgate.skip_subject_changes', true) IS DISTINCT FROM 'on' THEN
        INSERT INTO subject_changes (subject) SELECT person_id FROM new_links;
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
