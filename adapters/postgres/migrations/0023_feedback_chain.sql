-- +goose Up
-- +goose StatementBegin
-- 0023: a check's feedback is a chain, its first feedback and then each
-- correction naming the one before. The service read the chain and then
-- appended, serialised per process only: two replicas given the same
-- feedback at once both appended a first one (or both a correction of the
-- same one), and the check had two feedbacks none of which corrected the
-- other. Each body now states its place in the chain (follows: "" for the
-- first, else the id of the feedback it corrects), and the index holds one
-- feedback per place, the first in log order (appends are serialised by
-- the append lock, so the trigger of the later one meets the earlier's
-- row), and none that follows a feedback it does not hold: a later one is
-- in the log without effect, and its writer, reading its row back, answers
-- 409 (as a second change of a commitment is, 0010).
-- Bodies without follows (those earlier releases wrote) are indexed as
-- before, with follows NULL. Only the feedback branch of the function
-- changes.
ALTER TABLE feedback ADD COLUMN follows text;

CREATE UNIQUE INDEX feedback_follows ON feedback (check_id, follows) WHERE follows IS NOT NULL;

CREATE OR REPLACE FUNCTION evidence_follow_up() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
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
        -- A feedback following one the index does not hold is not
        -- indexed, nor (ON CONFLICT) one whose place in the chain is taken.
        IF jsonb_typeof(j->'follows') = 'string' AND j->>'follows' <> '' AND NOT EXISTS (
            SELECT 1 FROM feedback WHERE feedback_id = j->>'follows' AND check_id = j->>'check_id') THEN
            RETURN NULL;
        END IF;
        INSERT INTO feedback (feedback_id, idx, check_id, partner, decision, applied, not_applied, recorded_at, follows)
        SELECT NEW.id, NEW.idx, j->>'check_id', NEW.partner, j->>'decision',
               count(*) FILTER (WHERE m->'applied' = 'true'::jsonb), count(*) FILTER (WHERE m->'applied' = 'false'::jsonb), NEW.at,
               CASE WHEN jsonb_typeof(j->'follows') = 'string' THEN j->>'follows' END
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
-- +goose StatementEnd
