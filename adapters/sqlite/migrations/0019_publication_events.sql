-- +goose Up
-- +goose StatementBegin
-- 0019: an entry recorded before its published_at is pending until then,
-- and comes into force when it passes, which writes nothing: like a
-- validity end (0011), it is found by the sweep, which adds a 'published'
-- outbox row for each entry whose published_at passed since it last
-- looked, if a version recorded before it set it (the listing was told
-- pending). Entries are nearly always recorded after their publication
-- (the decision is published, then listed), so the index holds only those
-- created before it: the few the sweep can find.
CREATE INDEX entries_published_later ON entries (published_at) WHERE published_at > created_at;

-- How far the sweep has looked for publications. A column of its own, not
-- swept_until: replicas of the previous release sweep validity ends only
-- and move swept_until past publications they do not announce. NULL (a
-- row a previous release inserted) is swept_until.
ALTER TABLE expiry_sweep ADD COLUMN published_until INTEGER;
UPDATE expiry_sweep SET published_until = swept_until;

-- The exclusive right to fan the outbox out, held by one process at a time
-- until leased_until: two fan-outs computing events of the same rows each
-- recorded them in the evidence log, and only one could publish them.
CREATE TABLE event_fanout (
    one          INTEGER NOT NULL PRIMARY KEY CHECK (one = 1),
    holder       TEXT    NOT NULL,
    leased_until INTEGER NOT NULL
) STRICT;
-- +goose StatementEnd
