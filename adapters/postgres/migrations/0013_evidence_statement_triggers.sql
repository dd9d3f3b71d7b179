-- +goose Up
-- +goose StatementBegin
-- 0013: the rows derived from checks (check_index and check_lists of
-- 0010, checked_subjects of 0011) are written once per INSERT statement on
-- evidence, set-based from its transition table, instead of by two
-- PL/pgSQL row triggers each running their own inserts per record. The
-- evidence commit of a batch of checks is one statement, so this is one
-- trigger run per group commit; the row triggers were most of PostgreSQL's
-- CPU per check. What is derived, and from which records, is unchanged:
-- the same byte scan for the subject, the same JSON tests for the index.
-- Feedback and commitments keep the row trigger (rare, and a commitment's
-- updates depend on the order of its records).

CREATE FUNCTION evidence_checks_derived() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    -- Subjects lately checked (evidence_note_check, per statement).
    INSERT INTO checked_subjects (subject, partner, checked_at)
    SELECT DISTINCT ON (subject, partner) subject, partner, at
    FROM (
        SELECT encode(substring(rest FROM 1 FOR q - 1), 'escape') AS subject, partner, at, q
        FROM (
            SELECT partner, at, rest, position('\x22'::bytea IN rest) AS q
            FROM (
                SELECT partner, at, substring(body FROM p + length(convert_to('"subject":{"id":"', 'UTF8')) FOR 65) AS rest
                FROM (
                    SELECT partner, at, body, position(convert_to('"subject":{"id":"', 'UTF8') IN body) AS p
                    FROM new_rows WHERE kind = 'check'
                ) AS m WHERE p > 0
            ) AS r
        ) AS s WHERE q >= 2
    ) AS c
    ORDER BY subject, partner, at DESC
    ON CONFLICT (subject, partner) DO UPDATE
        SET checked_at = greatest(checked_subjects.checked_at, excluded.checked_at);

    -- The check index and its lists (evidence_follow_up's check branch).
    WITH e AS (
        SELECT id, idx, partner, at, j
        FROM (SELECT id, idx, partner, at, convert_from(body, 'UTF8')::jsonb AS j FROM new_rows
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

DROP TRIGGER evidence_check_subject ON evidence;
DROP TRIGGER evidence_follow_up ON evidence;

CREATE TRIGGER evidence_follow_up AFTER INSERT ON evidence FOR EACH ROW
    WHEN ((NEW.kind = 'feedback' AND substring(NEW.body FROM 1 FOR 15) = convert_to('{"feedback_id":', 'UTF8'))
       OR (NEW.kind = 'commitment' AND substring(NEW.body FROM 1 FOR 17) = convert_to('{"commitment_id":', 'UTF8')))
    EXECUTE FUNCTION evidence_follow_up();

CREATE TRIGGER evidence_checks_derived AFTER INSERT ON evidence
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION evidence_checks_derived();
-- +goose StatementEnd
