-- +goose Up
-- +goose StatementBegin
-- 0011: push (信息推送). Changes of entries leave an outbox row in the
-- transaction that makes them; a fan-out turns each row into events for the
-- partners subscribed to the subjects it touches (those that checked the
-- subject lately, and watchlists); events are read from a pull feed and
-- delivered to webhooks.

-- event_outbox is written by a trigger, like entry_versions and
-- subject_changes, so that every writer of entries (the API, the lifecycle,
-- imports, upstream sources) leaves it in its own transaction: a change
-- committed is a change that will be announced, whatever happens to the
-- process after the commit. The fan-out deletes the rows it has turned into
-- events, in the transaction that inserts the events.
CREATE TABLE event_outbox (
    seq         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entry_id    text        NOT NULL,
    version     bigint      NOT NULL,
    recorded_at timestamptz NOT NULL,
    -- '' for a write of the entry; 'expired' for the passing of its
    -- validity, which writes nothing and is found by a sweep instead.
    kind        text        NOT NULL DEFAULT ''
);

-- How far the expiry sweep has looked: entries whose valid_until falls
-- after swept_until and at or before now get an 'expired' outbox row.
CREATE TABLE expiry_sweep (
    one         boolean     NOT NULL PRIMARY KEY DEFAULT true CHECK (one),
    swept_until timestamptz NOT NULL
);

CREATE INDEX entries_valid_until ON entries (valid_until) WHERE valid_until IS NOT NULL;

CREATE FUNCTION entries_note_event() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO event_outbox (entry_id, version, recorded_at) VALUES (NEW.id, NEW.version, NEW.updated_at);
    RETURN NULL;
END;
$$;

CREATE TRIGGER entries_event AFTER INSERT OR UPDATE ON entries
    FOR EACH ROW EXECUTE FUNCTION entries_note_event();

-- The subjects each partner checked, with the time of its last check: the
-- subscription "subjects I checked within the window". Written by a trigger
-- on the evidence log, so that it is as durable as the check itself.
CREATE TABLE checked_subjects (
    subject    text        NOT NULL,
    partner    text        NOT NULL,
    checked_at timestamptz NOT NULL,
    PRIMARY KEY (subject, partner)
);

CREATE INDEX checked_subjects_at ON checked_subjects (checked_at);

-- The subject is found in the body's bytes, not by parsing it as JSON: a
-- check's body is credgate's own encoding ({"check_id":…,"partner":…,
-- "subject":{"id":"…",…}), and a record that is not (a test's, a future
-- kind's) must never make the append fail.
CREATE FUNCTION evidence_note_check() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    marker bytea := convert_to('"subject":{"id":"', 'UTF8');
    p      integer;
    rest   bytea;
    q      integer;
BEGIN
    IF NEW.kind <> 'check' THEN
        RETURN NULL;
    END IF;
    p := position(marker IN NEW.body);
    IF p = 0 THEN
        RETURN NULL;
    END IF;
    rest := substring(NEW.body FROM p + length(marker) FOR 65);
    q := position('\x22'::bytea IN rest);
    IF q < 2 THEN
        RETURN NULL;
    END IF;
    INSERT INTO checked_subjects (subject, partner, checked_at)
        VALUES (encode(substring(rest FROM 1 FOR q - 1), 'escape'), NEW.partner, NEW.at)
        ON CONFLICT (subject, partner) DO UPDATE
        SET checked_at = greatest(checked_subjects.checked_at, excluded.checked_at);
    RETURN NULL;
END;
$$;

CREATE TRIGGER evidence_check_subject AFTER INSERT ON evidence
    FOR EACH ROW EXECUTE FUNCTION evidence_note_check();

-- Watchlists: subjects a partner uploaded to be told about.
CREATE TABLE watchlist (
    partner  text        NOT NULL,
    subject  text        NOT NULL,
    added_at timestamptz NOT NULL,
    PRIMARY KEY (partner, subject)
);

CREATE INDEX watchlist_subject ON watchlist (subject);

-- Events, one per subscriber. seq is the feed's cursor: events are
-- inserted by one fan-out at a time (an advisory lock), so seq order is
-- commit order and a reader after seq n misses nothing committed later.
CREATE TABLE events (
    seq        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         text        NOT NULL UNIQUE,
    partner    text        NOT NULL,
    kind       text        NOT NULL,
    created_at timestamptz NOT NULL,
    body       bytea       NOT NULL
);

CREATE INDEX events_partner ON events (partner, seq);
CREATE INDEX events_created ON events (created_at);

-- A partner's webhook.
CREATE TABLE webhooks (
    partner    text        NOT NULL PRIMARY KEY,
    url        text        NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- One delivery per event to a webhook: pending (due at next_at; leased by
-- one worker until leased_until), delivered, or dead (given up on; an
-- administrator can replay it).
CREATE TABLE deliveries (
    event_seq    bigint      NOT NULL PRIMARY KEY REFERENCES events (seq) ON DELETE CASCADE,
    partner      text        NOT NULL,
    state        text        NOT NULL,
    attempts     integer     NOT NULL DEFAULT 0,
    next_at      timestamptz NOT NULL,
    leased_until timestamptz,
    last_status  integer     NOT NULL DEFAULT 0,
    last_error   text        NOT NULL DEFAULT '',
    updated_at   timestamptz NOT NULL
);

CREATE INDEX deliveries_due ON deliveries (next_at) WHERE state = 'pending';
CREATE INDEX deliveries_partner ON deliveries (partner, state, event_seq);

-- The delivery log: every attempt.
CREATE TABLE delivery_attempts (
    event_seq   bigint      NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    attempt     integer     NOT NULL,
    at          timestamptz NOT NULL,
    status      integer     NOT NULL,
    error       text        NOT NULL,
    duration_us bigint      NOT NULL,
    PRIMARY KEY (event_seq, attempt)
);
-- +goose StatementEnd
