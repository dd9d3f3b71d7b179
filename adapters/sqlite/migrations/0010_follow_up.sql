-- +goose Up
-- +goose StatementBegin
-- What follows a check: execution feedback, credit commitments, and the
-- index of checks that statistics and coverage (应查必查) query.
--
-- Every table here is derived from the evidence log by triggers on its
-- insert, in the appending transaction: a check, a feedback or a commitment
-- is in these tables exactly when its record is in the log, whoever wrote
-- it, and the tables are never written otherwise. The triggers read
-- credgate's own bodies only (recognised by their first member) and never
-- fail: a batch of checks must not be refused for a record they cannot
-- read. Re-runs as of a past time (as_of) are not checks anyone made, and
-- are not indexed.

-- One row per check: who checked which subject for which action, when, and
-- what was answered.
CREATE TABLE check_index (
    check_id   TEXT    NOT NULL PRIMARY KEY,
    idx        INTEGER NOT NULL,
    partner    TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    outcome    TEXT    NOT NULL,
    region     TEXT    NOT NULL,
    checked_at INTEGER NOT NULL
) STRICT;

-- Coverage: the last check of a subject for an action before a time.
CREATE INDEX check_index_subject ON check_index (subject, action, checked_at);
-- Overdue feedback and statistics: checks of an action, of a partner, of a period.
CREATE INDEX check_index_action ON check_index (action, checked_at);
CREATE INDEX check_index_partner ON check_index (partner, checked_at);
CREATE INDEX check_index_time ON check_index (checked_at);
-- Listings in log order (overdue feedback).
CREATE INDEX check_index_idx ON check_index (idx);

-- The lists whose measures a check's answer applied (statistics by list).
CREATE TABLE check_lists (
    check_id TEXT NOT NULL,
    list     TEXT NOT NULL,
    PRIMARY KEY (check_id, list)
) STRICT, WITHOUT ROWID;

CREATE INDEX check_lists_list ON check_lists (list, check_id);

-- Feedback (执行反馈): every version, corrections included; the current one
-- of a check is its highest idx.
CREATE TABLE feedback (
    feedback_id TEXT    NOT NULL PRIMARY KEY,
    idx         INTEGER NOT NULL,
    check_id    TEXT    NOT NULL,
    partner     TEXT    NOT NULL,
    decision    TEXT    NOT NULL,
    applied     INTEGER NOT NULL,
    not_applied INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL
) STRICT;

CREATE INDEX feedback_check ON feedback (check_id, idx);
CREATE INDEX feedback_partner ON feedback (partner, idx);
CREATE INDEX feedback_idx ON feedback (idx);

-- Credit commitments (信用承诺) and their state. due is a date
-- (YYYY-MM-DD, in the catalogue calendar's zone). The first fulfilment or
-- breach in log order decides; a later one is in the log, without effect.
CREATE TABLE commitments (
    id            TEXT    NOT NULL PRIMARY KEY,
    idx           INTEGER NOT NULL,
    partner       TEXT    NOT NULL,
    subject       TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    check_id      TEXT    NOT NULL,
    proceeding_id TEXT    NOT NULL,
    due           TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    state_record  TEXT    NOT NULL,
    state_at      INTEGER,
    recorded_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX commitments_state ON commitments (state, due, id);
CREATE INDEX commitments_partner ON commitments (partner, id);
CREATE INDEX commitments_subject ON commitments (subject, id);

CREATE TRIGGER evidence_index_check AFTER INSERT ON evidence
    WHEN NEW.kind = 'check' AND substr(CAST(NEW.body AS TEXT), 1, 12) = '{"check_id":'
        AND json_valid(CAST(NEW.body AS TEXT))
BEGIN
    INSERT OR IGNORE INTO check_index (check_id, idx, partner, subject, action, outcome, region, checked_at)
    SELECT NEW.id, NEW.idx, NEW.partner, json_extract(b, '$.subject.id'), json_extract(b, '$.action'),
           coalesce(json_extract(b, '$.outcome'), ''), coalesce(json_extract(b, '$.context.region'), ''), NEW.at
    FROM (SELECT CAST(NEW.body AS TEXT) AS b)
    WHERE json_type(b, '$.subject.id') = 'text' AND json_type(b, '$.action') = 'text'
      AND json_type(b, '$.as_of') IS NULL;
    INSERT OR IGNORE INTO check_lists (check_id, list)
    SELECT NEW.id, json_extract(m.value, '$.list')
    FROM json_each(CAST(NEW.body AS TEXT), '$.measures') AS m
    WHERE json_type(CAST(NEW.body AS TEXT), '$.as_of') IS NULL AND m.type = 'object'
      AND json_extract(m.value, '$.status') = 'applied' AND json_type(m.value, '$.list') = 'text';
END;

CREATE TRIGGER evidence_index_feedback AFTER INSERT ON evidence
    WHEN NEW.kind = 'feedback' AND substr(CAST(NEW.body AS TEXT), 1, 15) = '{"feedback_id":'
        AND json_valid(CAST(NEW.body AS TEXT))
BEGIN
    INSERT OR IGNORE INTO feedback (feedback_id, idx, check_id, partner, decision, applied, not_applied, recorded_at)
    SELECT NEW.id, NEW.idx, json_extract(b, '$.check_id'), NEW.partner, json_extract(b, '$.decision'),
           (SELECT count(*) FROM json_each(b, '$.measures') AS m WHERE m.type = 'object' AND json_type(m.value, '$.applied') = 'true'),
           (SELECT count(*) FROM json_each(b, '$.measures') AS m WHERE m.type = 'object' AND json_type(m.value, '$.applied') = 'false'),
           NEW.at
    FROM (SELECT CAST(NEW.body AS TEXT) AS b)
    WHERE json_type(b, '$.check_id') = 'text' AND json_type(b, '$.decision') = 'text';
END;

CREATE TRIGGER evidence_index_commitment AFTER INSERT ON evidence
    WHEN NEW.kind = 'commitment' AND substr(CAST(NEW.body AS TEXT), 1, 17) = '{"commitment_id":'
        AND json_valid(CAST(NEW.body AS TEXT))
BEGIN
    INSERT OR IGNORE INTO commitments (id, idx, partner, subject, kind, check_id, proceeding_id, due, state,
        state_record, state_at, recorded_at)
    SELECT json_extract(b, '$.commitment_id'), NEW.idx, NEW.partner, json_extract(b, '$.subject.id'),
           json_extract(b, '$.kind'), coalesce(json_extract(b, '$.check_id'), ''),
           coalesce(json_extract(b, '$.proceeding_id'), ''), json_extract(b, '$.due'), 'open', '', NULL, NEW.at
    FROM (SELECT CAST(NEW.body AS TEXT) AS b)
    WHERE json_extract(b, '$.op') = 'recorded' AND json_type(b, '$.commitment_id') = 'text'
      AND json_type(b, '$.subject.id') = 'text' AND json_type(b, '$.kind') = 'text' AND json_type(b, '$.due') = 'text';
    UPDATE commitments SET state = json_extract(CAST(NEW.body AS TEXT), '$.op'), state_record = NEW.id, state_at = NEW.at
    WHERE id = json_extract(CAST(NEW.body AS TEXT), '$.commitment_id') AND state = 'open'
      AND json_extract(CAST(NEW.body AS TEXT), '$.op') IN ('fulfilled', 'breached');
END;

-- The checks, feedback and commitments already in the log.
INSERT OR IGNORE INTO check_index (check_id, idx, partner, subject, action, outcome, region, checked_at)
SELECT id, idx, partner, json_extract(CAST(body AS TEXT), '$.subject.id'), json_extract(CAST(body AS TEXT), '$.action'),
       coalesce(json_extract(CAST(body AS TEXT), '$.outcome'), ''), coalesce(json_extract(CAST(body AS TEXT), '$.context.region'), ''), at
FROM evidence
WHERE kind = 'check' AND substr(CAST(body AS TEXT), 1, 12) = '{"check_id":' AND json_valid(CAST(body AS TEXT))
  AND json_type(CAST(body AS TEXT), '$.subject.id') = 'text' AND json_type(CAST(body AS TEXT), '$.action') = 'text'
  AND json_type(CAST(body AS TEXT), '$.as_of') IS NULL;
INSERT OR IGNORE INTO check_lists (check_id, list)
SELECT e.id, json_extract(m.value, '$.list')
FROM evidence AS e,
     json_each(CASE WHEN json_valid(CAST(e.body AS TEXT)) THEN CAST(e.body AS TEXT) ELSE '{}' END, '$.measures') AS m
WHERE e.kind = 'check' AND substr(CAST(e.body AS TEXT), 1, 12) = '{"check_id":' AND json_valid(CAST(e.body AS TEXT))
  AND json_type(CAST(e.body AS TEXT), '$.as_of') IS NULL AND m.type = 'object'
  AND json_extract(m.value, '$.status') = 'applied' AND json_type(m.value, '$.list') = 'text';
-- +goose StatementEnd
