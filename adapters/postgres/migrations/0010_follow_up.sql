-- +goose Up
-- +goose StatementBegin
-- What follows a check: execution feedback, credit commitments, and the
-- index of checks that statistics and coverage (应查必查) query.
--
-- Every table here is derived from the evidence log by a trigger on its
-- insert, in the appending transaction: a check, a feedback or a commitment
-- is in these tables exactly when its record is in the log, whoever wrote
-- it, and the tables are never written otherwise. The trigger reads
-- credgate's own bodies only (recognised by their first member, so that it
-- needs no exception block: a subtransaction per record would overflow a
-- group commit's transaction) and fails on nothing it reads. Re-runs as of
-- a past time (as_of) are not checks anyone made, and are not indexed.

-- One row per check: who checked which subject for which action, when, and
-- what was answered.
CREATE TABLE check_index (
    check_id   text        NOT NULL PRIMARY KEY,
    idx        bigint      NOT NULL,
    partner    text        NOT NULL,
    subject    text        NOT NULL,
    action     text        NOT NULL,
    outcome    text        NOT NULL,
    region     text        NOT NULL,
    checked_at timestamptz NOT NULL
);

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
    check_id text NOT NULL,
    list     text NOT NULL,
    PRIMARY KEY (check_id, list)
);

CREATE INDEX check_lists_list ON check_lists (list, check_id);

-- Feedback (执行反馈): every version, corrections included; the current one
-- of a check is its highest idx.
CREATE TABLE feedback (
    feedback_id text        NOT NULL PRIMARY KEY,
    idx         bigint      NOT NULL,
    check_id    text        NOT NULL,
    partner     text        NOT NULL,
    decision    text        NOT NULL,
    applied     integer     NOT NULL,
    not_applied integer     NOT NULL,
    recorded_at timestamptz NOT NULL
);

CREATE INDEX feedback_check ON feedback (check_id, idx);
CREATE INDEX feedback_partner ON feedback (partner, idx);
CREATE INDEX feedback_idx ON feedback (idx);

-- Credit commitments (信用承诺) and their state. due is a date
-- (YYYY-MM-DD, in the catalogue calendar's zone). The first fulfilment or
-- breach in log order decides; a later one is in the log, without effect.
CREATE TABLE commitments (
    id            text        NOT NULL PRIMARY KEY,
    idx           bigint      NOT NULL,
    partner       text        NOT NULL,
    subject       text        NOT NULL,
    kind          text        NOT NULL,
    check_id      text        NOT NULL,
    proceeding_id text        NOT NULL,
    due           text        NOT NULL,
    state         text        NOT NULL,
    state_record  text        NOT NULL,
    state_at      timestamptz,
    recorded_at   timestamptz NOT NULL
);

CREATE INDEX commitments_state ON commitments (state, due, id);
CREATE INDEX commitments_partner ON commitments (partner, id);
CREATE INDEX commitments_subject ON commitments (subject, id);

CREATE FUNCTION evidence_follow_up() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    j jsonb;
BEGIN
    j := convert_from(NEW.body, 'UTF8')::jsonb;
    IF NEW.kind = 'check' THEN
        IF jsonb_typeof(j->'subject'->'id') IS DISTINCT FROM 'string' OR jsonb_typeof(j->'action') IS DISTINCT FROM 'string'
            OR jsonb_typeof(j->'as_of') IS NOT NULL THEN
            RETURN NULL;
        END IF;
        INSERT INTO check_index (check_id, idx, partner, subject, action, outcome, region, checked_at)
        VALUES (NEW.id, NEW.idx, NEW.partner, j->'subject'->>'id', j->>'action', coalesce(j->>'outcome', ''),
                coalesce(j->'context'->>'region', ''), NEW.at)
        ON CONFLICT DO NOTHING;
        IF jsonb_typeof(j->'measures') = 'array' THEN
            INSERT INTO check_lists (check_id, list)
            SELECT DISTINCT NEW.id, m->>'list' FROM jsonb_array_elements(j->'measures') AS m
            WHERE jsonb_typeof(m) = 'object' AND m->>'status' = 'applied' AND jsonb_typeof(m->'list') = 'string'
            ON CONFLICT DO NOTHING;
        END IF;
    ELSIF NEW.kind = 'feedback' THEN
        IF jsonb_typeof(j->'check_id') IS DISTINCT FROM 'string' OR jsonb_typeof(j->'decision') IS DISTINCT FROM 'string' THEN
            RETURN NULL;
        END IF;
        INSERT INTO feedback (feedback_id, idx, check_id, partner, decision, applied, not_applied, recorded_at)
        SELECT NEW.id, NEW.idx, j->>'check_id', NEW.partner, j->>'decision',
               count(*) FILTER (WHERE m->'applied' = 'true'::jsonb), count(*) FILTER (WHERE m->'applied' = 'false'::jsonb), NEW.at
        FROM jsonb_array_elements(CASE WHEN jsonb_typeof(j->'measures') = 'array' THEN j->'measures' ELSE '[]'::jsonb END) AS m
        ON CONFLICT DO NOTHING;
    ELSIF NEW.kind = 'commitment' THEN
        IF jsonb_typeof(j->'commitment_id') IS DISTINCT FROM 'string' THEN
            RETURN NULL;
        END IF;
        IF j->>'op' = 'recorded' THEN
            IF jsonb_typeof(j->'subject'->'id') IS DISTINCT FROM 'string' OR jsonb_typeof(j->'kind') IS DISTINCT FROM 'string'
                OR jsonb_typeof(j->'due') IS DISTINCT FROM 'string' THEN
                RETURN NULL;
            END IF;
            INSERT INTO commitments (id, idx, partner, subject, kind, check_id, proceeding_id, due, state, state_record,
                state_at, recorded_at)
            VALUES (j->>'commitment_id', NEW.idx, NEW.partner, j->'subject'->>'id', j->>'kind', coalesce(j->>'check_id', ''),
                coalesce(j->>'proceeding_id', ''), j->>'due', 'open', '', NULL, NEW.at)
            ON CONFLICT DO NOTHING;
        ELSIF j->>'op' IN ('fulfilled', 'breached') THEN
            UPDATE commitments SET state = j->>'op', state_record = NEW.id, state_at = NEW.at
            WHERE id = j->>'commitment_id' AND state = 'open';
        END IF;
    END IF;
    RETURN NULL;
END;
$$;

-- Only credgate's own bodies: a check's begins {"check_id":, a feedback's
-- {"feedback_id":, a commitment's {"commitment_id":.
CREATE TRIGGER evidence_follow_up AFTER INSERT ON evidence FOR EACH ROW
    WHEN ((NEW.kind = 'check' AND substring(NEW.body FROM 1 FOR 12) = convert_to('{"check_id":', 'UTF8'))
       OR (NEW.kind = 'feedback' AND substring(NEW.body FROM 1 FOR 15) = convert_to('{"feedback_id":', 'UTF8'))
       OR (NEW.kind = 'commitment' AND substring(NEW.body FROM 1 FOR 17) = convert_to('{"commitment_id":', 'UTF8')))
    EXECUTE FUNCTION evidence_follow_up();

-- The checks already in the log.
INSERT INTO check_index (check_id, idx, partner, subject, action, outcome, region, checked_at)
SELECT id, idx, partner, j->'subject'->>'id', j->>'action', coalesce(j->>'outcome', ''), coalesce(j->'context'->>'region', ''), at
FROM (SELECT id, idx, partner, at, convert_from(body, 'UTF8')::jsonb AS j FROM evidence
      WHERE kind = 'check' AND substring(body FROM 1 FOR 12) = convert_to('{"check_id":', 'UTF8')) AS e
WHERE jsonb_typeof(j->'subject'->'id') = 'string' AND jsonb_typeof(j->'action') = 'string' AND jsonb_typeof(j->'as_of') IS NULL
ON CONFLICT DO NOTHING;
INSERT INTO check_lists (check_id, list)
SELECT DISTINCT c.check_id, m->>'list'
FROM check_index AS c JOIN evidence AS e ON e.id = c.check_id,
     jsonb_array_elements(CASE WHEN jsonb_typeof(convert_from(e.body, 'UTF8')::jsonb->'measures') = 'array'
                               THEN convert_from(e.body, 'UTF8')::jsonb->'measures' ELSE '[]'::jsonb END) AS m
WHERE jsonb_typeof(m) = 'object' AND m->>'status' = 'applied' AND jsonb_typeof(m->'list') = 'string'
ON CONFLICT DO NOTHING;
-- +goose StatementEnd
