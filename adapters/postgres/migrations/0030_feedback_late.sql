-- +goose Up
-- +goose StatementBegin
-- 0030: whether a feedback came after its due time. The service writes it
-- into every feedback body when it accepts one (late: after due_at, the
-- catalogue's working days for the check's action from the check's time),
-- and the index now keeps it, so that statistics can count late feedback:
-- true, false, or NULL when the body does not say (a body of another
-- shape, which is indexed as before). The feedback already indexed takes
-- the value its own body recorded when it was accepted; one whose body no
-- longer says (erased, unreadable: evidence_body_jsonb, 0026) stays NULL,
-- counted neither late nor in time. Only the feedback branch of
-- evidence_follow_up (as 0026 left it) changes, by its late column.
ALTER TABLE feedback ADD COLUMN late boolean;

UPDATE feedback AS f SET late = CASE WHEN jsonb_typeof(b.j->'late') = 'boolean' THEN (b.j->'late')::boolean END
FROM (SELECT e.idx, evidence_body_jsonb(e.body) AS j FROM evidence AS e JOIN feedback AS g ON g.idx = e.idx) AS b
WHERE b.idx = f.idx;

CREATE OR REPLACE FUNCTION evidence_follow_up() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    j jsonb;
BEGIN
    j := evidence_body_jsonb(NEW.body);
    IF j IS NULL THEN
        RETURN NULL;
    END IF;
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
        INSERT INTO feedback (feedback_id, idx, check_id, partner, decision, applied, not_applied, recorded_at, follows, late)
        SELECT NEW.id, NEW.idx, j->>'check_id', NEW.partner, j->>'decision',
               count(*) FILTER (WHERE m->'applied' = 'true'::jsonb), count(*) FILTER (WHERE m->'applied' = 'false'::jsonb), NEW.at,
               CASE WHEN jsonb_typeof(j->'follows') = 'string' THEN j->>'follows' END,
               CASE WHEN jsonb_typeof(j->'late') = 'boolean' THEN (j->'late')::boolean END
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
