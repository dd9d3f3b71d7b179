-- +goose Up
-- +goose StatementBegin
-- 0019: checked_subjects (0011) is no longer read or written. It held, per
-- subject and partner, the time of the partner's last check, for the push
-- fan-out's "subjects I checked"; every check upserted its row (a key probe, a row lock and a HOT
-- update, in WAL on every commit). check_index (0010) holds the same fact, a
-- row per check, with check_index_subject (subject, action, checked_at): the
-- fan-out now reads the partners that checked a changed subject within
-- events.checked_window from there, a seek per subject and action
-- (sqlcommon's Subscribers).
--
-- What changes: a check made as of a past time (a retrospective or audit
-- re-run) is not in check_index, so it no longer makes its partner a
-- subscriber of the subject; only checks answered at the time do. The rows
-- dropped here are not needed: every check they stood for that counts is
-- in check_index, which is never pruned.
--
-- The table itself stays, unread and unwritten by this release: replicas
-- of the previous release write it with every batch of checks (and prune
-- it), so dropping it here would fail their appends in the middle of a
-- rolling upgrade. A later release, which no replica of the one before
-- this can run beside, drops it.
--
-- Of the functions that wrote the table, evidence_note_check (0011) has had
-- no trigger since 0013; evidence_checks_derived (0013, as 0016 left it)
-- still derives the rows of the batches the store does not write itself,
-- and is replaced by the same function without its checked_subjects insert.
CREATE OR REPLACE FUNCTION evidence_checks_derived() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    -- The appending store wrote this statement's rows itself.
    IF current_setting('credgate.check_rows', true) = 'written' THEN
        RETURN NULL;
    END IF;

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

DROP FUNCTION evidence_note_check();
-- +goose StatementEnd
