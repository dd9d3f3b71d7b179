-- +goose Up
-- +goose StatementBegin
-- 0015: a bulk load writes its entries' outbox rows when it commits.
--
-- The push fan-out reads event_outbox oldest first. Rows that a load's open
-- transaction has inserted are in the outbox's index but invisible to
-- everyone else, so each reading walks past all of them: over a load of
-- millions of entries the readings grew with the load, ran back to back
-- and took a core from it. A load sets credgate.defer_entry_events for its
-- transaction and, just before it commits, writes the outbox rows of all
-- its entries in one statement (adapters/internal/sqlcommon/bulk.go).
CREATE OR REPLACE FUNCTION entries_note_events() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF current_setting('credgate.defer_entry_events', true) IS DISTINCT FROM 'on' THEN
        INSERT INTO event_outbox (entry_id, version, recorded_at)
        SELECT id, version, updated_at FROM new_entries;
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
