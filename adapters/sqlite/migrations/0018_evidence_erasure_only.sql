-- +goose Up
-- +goose StatementBegin
-- 0018: evidence_no_rewrite (0001) refused changes to what the leaf commits
-- to but let body and salt be set to anything: a body could be rewritten
-- in place, which only the next read's hash check would notice. The one
-- change a record may undergo is erasure (docs/EVIDENCE.md): body and salt
-- both emptied, nothing else touched. Every other UPDATE is refused here.
-- The trigger keeps its name, so a test that drops it to simulate
-- tampering still can.
DROP TRIGGER evidence_no_rewrite;
CREATE TRIGGER evidence_no_rewrite BEFORE UPDATE ON evidence
    WHEN NEW.idx IS NOT OLD.idx OR NEW.id IS NOT OLD.id OR NEW.kind IS NOT OLD.kind
      OR NEW.partner IS NOT OLD.partner OR NEW.at IS NOT OLD.at OR NEW.hash IS NOT OLD.hash
      OR length(NEW.body) <> 0 OR length(NEW.salt) <> 0
BEGIN
    SELECT RAISE(ABORT, 'evidence is append-only: the only change allowed is erasure, body and salt both set to empty');
END;
-- +goose StatementEnd
