-- +goose Up
-- +goose StatementBegin
-- 0011: push (信息推送). Changes of entries leave an outbox row in the
-- transaction that makes them; a fan-out turns each row into events for the
-- partners subscribed to the subjects it touches (those that checked the
-- subject lately, and watchlists); events are read from a pull feed and
-- delivered to webhooks.

-- event_outbox is written by a trigger, like entry_versions and
-- subject_changes, so that every writer of entries leaves it in its own
-- transaction. The fan-out deletes the rows it has turned into events, in
-- the transaction that inserts the events.
CREATE TABLE event_outbox (
    seq         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    entry_id    TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    -- '' for a write of the entry; 'expired' for the passing of its
    -- validity, which writes nothing and is found by a sweep instead.
    kind        TEXT    NOT NULL DEFAULT ''
) STRICT;

-- How far the expiry sweep has looked.
CREATE TABLE expiry_sweep (
    one         INTEGER NOT NULL PRIMARY KEY CHECK (one = 1),
    swept_until INTEGER NOT NULL
) STRICT;

CREATE INDEX entries_valid_until ON entries (valid_until) WHERE valid_until IS NOT NULL;

CREATE TRIGGER entries_event_insert AFTER INSERT ON entries BEGIN
    INSERT INTO event_outbox (entry_id, version, recorded_at) VALUES (NEW.id, NEW.version, NEW.updated_at);
END;

CREATE TRIGGER entries_event_update AFTER UPDATE ON entries BEGIN
    INSERT INTO event_outbox (entry_id, version, recorded_at) VALUES (NEW.id, NEW.version, NEW.updated_at);
END;

-- The subjects each partner checked, with the time of its last check,
-- written by a trigger on the evidence log.
CREATE TABLE checked_subjects (
    subject    TEXT    NOT NULL,
    partner    TEXT    NOT NULL,
    checked_at INTEGER NOT NULL,
    PRIMARY KEY (subject, partner)
) STRICT, WITHOUT ROWID;

CREATE INDEX checked_subjects_at ON checked_subjects (checked_at);

-- The subject is found in the body's bytes, not by parsing it as JSON: a
-- check's body is credgate's own encoding ({"check_id":…,"partner":…,
-- "subject":{"id":"…",…}), and a record that is not must never make the
-- append fail.
CREATE TRIGGER evidence_check_subject AFTER INSERT ON evidence
    WHEN NEW.kind = 'check' AND instr(NEW.body, CAST('"subject":{"id":"' AS BLOB)) > 0 BEGIN
    INSERT INTO checked_subjects (subject, partner, checked_at)
        SELECT CAST(substr(rest, 1, instr(rest, CAST('"' AS BLOB)) - 1) AS TEXT), NEW.partner, NEW.at
        FROM (SELECT substr(NEW.body, instr(NEW.body, CAST('"subject":{"id":"' AS BLOB)) + 17, 65) AS rest)
        WHERE instr(rest, CAST('"' AS BLOB)) > 1
        ON CONFLICT (subject, partner) DO UPDATE SET checked_at = max(checked_at, excluded.checked_at);
END;

-- Watchlists: subjects a partner uploaded to be told about.
CREATE TABLE watchlist (
    partner  TEXT    NOT NULL,
    subject  TEXT    NOT NULL,
    added_at INTEGER NOT NULL,
    PRIMARY KEY (partner, subject)
) STRICT, WITHOUT ROWID;

CREATE INDEX watchlist_subject ON watchlist (subject);

-- Events, one per subscriber; seq is the feed's cursor (one writer at a
-- time: seq order is commit order).
CREATE TABLE events (
    seq        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE,
    partner    TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    body       BLOB    NOT NULL
) STRICT;

CREATE INDEX events_partner ON events (partner, seq);
CREATE INDEX events_created ON events (created_at);

CREATE TABLE webhooks (
    partner    TEXT    NOT NULL PRIMARY KEY,
    url        TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE deliveries (
    event_seq    INTEGER NOT NULL PRIMARY KEY REFERENCES events (seq) ON DELETE CASCADE,
    partner      TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      INTEGER NOT NULL,
    leased_until INTEGER,
    last_status  INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT    NOT NULL DEFAULT '',
    updated_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX deliveries_due ON deliveries (next_at) WHERE state = 'pending';
CREATE INDEX deliveries_partner ON deliveries (partner, state, event_seq);

CREATE TABLE delivery_attempts (
    event_seq   INTEGER NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    status      INTEGER NOT NULL,
    error       TEXT    NOT NULL,
    duration_us INTEGER NOT NULL,
    PRIMARY KEY (event_seq, attempt)
) STRICT, WITHOUT ROWID;
-- +goose StatementEnd
