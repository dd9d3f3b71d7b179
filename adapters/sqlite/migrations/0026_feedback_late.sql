-- +goose Up
-- +goose StatementBegin
-- 0026: whether a feedback came after its due time. The service writes it
-- into every feedback body when it accepts one (late: after due_at, the
-- catalogue's working days for the check's action from the check's time),
-- and the index now keeps it, so that statistics can count late feedback:
-- 1 late, 0 in time, NULL when the body does not say (a body of another
-- shape, which is indexed as before). The feedback already indexed takes
-- the value its own body recorded when it was accepted; one whose body no
-- longer says (erased) stays NULL, counted neither late nor in time. Only
-- the late column of the trigger (as 0020 left it) changes.
ALTER TABLE feedback ADD COLUMN late INTEGER;

UPDATE feedback SET late = (
    SELECT CASE json_type(CAST(e.body AS TEXT), '$.late') WHEN 'true' THEN 1 WHEN 'false' THEN 0 END
    FROM evidence AS e
    WHERE e.idx = feedback.idx AND json_valid(CAST(e.body AS TEXT)));

DROP TRIGGER evidence_index_feedback;

CREATE TRIGGER evidence_index_feedback AFTER INSERT ON evidence
    WHEN NEW.kind = 'feedback' AND substr(CAST(NEW.body AS TEXT), 1, 15) = '{"feedback_id":'
        AND json_valid(CAST(NEW.body AS TEXT))
BEGIN
    INSERT OR IGNORE INTO feedback (feedback_id, idx, check_id, partner, decision, applied, not_applied, recorded_at, follows, late)
    SELECT NEW.id, NEW.idx, json_extract(b, '$.check_id'), NEW.partner, json_extract(b, '$.decision'),
           (SELECT count(*) FROM json_each(b, '$.measures') AS m WHERE m.type = 'object' AND json_type(m.value, '$.applied') = 'true'),
           (SELECT count(*) FROM json_each(b, '$.measures') AS m WHERE m.type = 'object' AND json_type(m.value, '$.applied') = 'false'),
           NEW.at,
           CASE WHEN json_type(b, '$.follows') = 'text' THEN json_extract(b, '$.follows') END,
           CASE json_type(b, '$.late') WHEN 'true' THEN 1 WHEN 'false' THEN 0 END
    FROM (SELECT CAST(NEW.body AS TEXT) AS b)
    WHERE json_type(b, '$.check_id') = 'text' AND json_type(b, '$.decision') = 'text'
      AND (json_type(b, '$.follows') IS NOT 'text' OR json_extract(b, '$.follows') = ''
           OR EXISTS (SELECT 1 FROM feedback AS f
                      WHERE f.feedback_id = json_extract(b, '$.follows') AND f.check_id = json_extract(b, '$.check_id')));
END;
-- +goose StatementEnd
