-- +goose Up
-- +goose StatementBegin
-- 0020: a check's feedback is a chain, its first feedback and then each
-- correction naming the one before. The service read the chain and then
-- appended, serialised per process only: two replicas given the same
-- feedback at once both appended a first one (or both a correction of the
-- same one), and the check had two feedbacks none of which corrected the
-- other. Each body now states its place in the chain (follows: "" for the
-- first, else the id of the feedback it corrects), and the index holds one
-- feedback per place, the first in log order, and none that follows a
-- feedback it does not hold: a later one is in the log without effect, and
-- its writer, reading its row back, answers 409 (as a second change of a
-- commitment is, 0010). Bodies without follows (those earlier releases
-- wrote) are indexed as before, with follows NULL.
ALTER TABLE feedback ADD COLUMN follows TEXT;

CREATE UNIQUE INDEX feedback_follows ON feedback (check_id, follows) WHERE follows IS NOT NULL;

DROP TRIGGER evidence_index_feedback;

CREATE TRIGGER evidence_index_feedback AFTER INSERT ON evidence
    WHEN NEW.kind = 'feedback' AND substr(CAST(NEW.body AS TEXT), 1, 15) = '{"feedback_id":'
        AND json_valid(CAST(NEW.body AS TEXT))
BEGIN
    INSERT OR IGNORE INTO feedback (feedback_id, idx, check_id, partner, decision, applied, not_applied, recorded_at, follows)
    SELECT NEW.id, NEW.idx, json_extract(b, '$.check_id'), NEW.partner, json_extract(b, '$.decision'),
           (SELECT count(*) FROM json_each(b, '$.measures') AS m WHERE m.type = 'object' AND json_type(m.value, '$.applied') = 'true'),
           (SELECT count(*) FROM json_each(b, '$.measures') AS m WHERE m.type = 'object' AND json_type(m.value, '$.applied') = 'false'),
           NEW.at,
           CASE WHEN json_type(b, '$.follows') = 'text' THEN json_extract(b, '$.follows') END
    FROM (SELECT CAST(NEW.body AS TEXT) AS b)
    WHERE json_type(b, '$.check_id') = 'text' AND json_type(b, '$.decision') = 'text'
      AND (json_type(b, '$.follows') IS NOT 'text' OR json_extract(b, '$.follows') = ''
           OR EXISTS (SELECT 1 FROM feedback AS f
                      WHERE f.feedback_id = json_extract(b, '$.follows') AND f.check_id = json_extract(b, '$.check_id')));
END;
-- +goose StatementEnd
