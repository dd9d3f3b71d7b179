-- +goose Up
-- +goose StatementBegin
-- 0026: the triggers that derive rows from record bodies (evidence_follow_up,
-- as 0023 left it; evidence_checks_derived, as 0019 left it) cast each body
-- to jsonb, and jsonb refuses text that JSON allows: the escape \u0000
-- (SQLSTATE 22P05), a lone surrogate, invalid UTF-8. The cast then raised,
-- and the error failed the whole commit: the record's own, every other
-- record of its group commit (checks among them were spooled, and the
-- spool retried the batch forever), where SQLite stored and derived the
-- same records (its triggers never fail, its 0010).
--
-- A body is now read by evidence_body_jsonb: as jsonb; failing that, with
-- each \u0000 read as U+FFFD, so that a NUL in free text (a reference, a
-- note) derives the rows SQLite derives (what is derived, ids, subjects,
-- actions, outcomes, lists, decisions, states, holds no NUL: the service
-- generates or validates it), the replacement keeping a string a string
-- whether its backslash began an escape or was itself escaped (\\u0000);
-- failing that, NULL: nothing is derived, as from a body of an unknown
-- shape, and nothing is refused. The exception blocks cost a
-- subtransaction per body read, only on these triggers: feedback and
-- commitment records, and batches of checks whose rows the store did not
-- write itself (sqlcommon's ReadPGCheckRows). It is VOLATILE (the default)
-- so that the planner does not pull it into each use of its result and
-- read a body once per field. The rest of both functions is unchanged.
CREATE OR REPLACE FUNCTION evidence_body_jsonb(body bytea) RETURNS jsonb LANGUAGE plpgsql STRICT AS $$
BEGIN
    BEGIN
        RETURN convert_from(body, 'UTF8')::jsonb;
    EXCEPTION WHEN data_exception THEN
        NULL;
    END;
    BEGIN
        RETURN replace(convert_from(body, 'UTF8'), E'\\u0000', E'\\ufffd')::jsonb;
    EXCEPTION WHEN data_exception THEN
        RETURN NULL;
    END;
END;
$$;

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

CREATE OR REPLACE FUNCTION evidence_checks_derived() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    -- The appending store wrote this statement's rows itself.
    IF current_setting('credgate.check_rows', true) = 'written' THEN
        RETURN NULL;
    END IF;

    -- The check index and its lists (evidence_follow_up's check branch).
    WITH e AS (
        SELECT id, idx, partner, at, j
        FROM (SELECT id, idx, partner, at, evidence_body_jsonb(body) AS j FROM new_rows
              WHERE kind = 'check' AND substring(body FROM 1 FOR 12) = convert_to('{"check_id":', 'UTF8')) AS b
        WHERE jsonb_typeof(j->'subject'->'id') = 'string' AND jsonb_typeof(j->'action') = 'string'
            AND jsonb_typeof(j->'as_of') IS NULL
    ), indexed AS (
        INSERT INTO check_index (check_id, idx, partner, subject, action, outcome, region, checked_at)
        SELECT id, idx, partner, j->'subject'->>'id', j->>'action', coalesce(j->>'outcome', ''),
               coalesce(j->'context'->>'region', ''), at
        FROM e
        ON CONFLICT DO NOTHING
    )
    INSERT INTO check_lists (check_id, list)
    SELECT DISTINCT e.id, m->>'list'
    FROM e, jsonb_array_elements(CASE WHEN jsonb_typeof(e.j->'measures') = 'array' THEN e.j->'measures' ELSE '[]'::jsonb END) AS m
    WHERE jsonb_typeof(m) = 'object' AND m->>'status' = 'applied' AND jsonb_typeof(m->'list') = 'string'
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
