-- +goose Up
-- +goose StatementBegin
-- 0016: the rows derived from checks are written by the PostgreSQL store
-- itself when it can: it reads the bodies in Go
-- (adapters/internal/sqlcommon/checkrows_pg.go) and sends check_index,
-- check_lists and checked_subjects as arrays in the appending transaction,
-- having set credgate.check_rows to 'written' for that transaction, and the
-- statement trigger of 0013 then returns at once. Parsing every check's body
-- as jsonb was most of the trigger's cost, and the trigger most of
-- PostgreSQL's CPU per check. Any other insert into evidence (another
-- writer, or a batch with a body the Go reading cannot vouch for) leaves
-- the setting unset and is derived by the trigger as before: what is
-- derived, and from which records, is unchanged.
CREATE OR REPLACE FUNCTION evidence_checks_derived() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    -- The appending store wrote this statement's rows itself.
    IF current_setting('credgate.check_rows', true) = 'written' THEN
        RETURN NULL;
    END IF;

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
-- +goose StatementEnd
