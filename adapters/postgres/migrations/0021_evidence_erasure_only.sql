-- +goose Up
-- +goose StatementBegin
-- 0021: evidence_append_only (0001) refused changes to what the leaf
-- commits to but let body and salt be set to anything: a body could be
-- rewritten in place, which only the next read's hash check would notice.
-- The one change a record may undergo is erasure (docs/EVIDENCE.md): body
-- and salt both emptied, nothing else touched. Every other UPDATE is
-- refused here. The function and the trigger keep their names, so a test
-- that disables evidence_no_rewrite to simulate tampering still can.
CREATE OR REPLACE FUNCTION evidence_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF (NEW.idx, NEW.id, NEW.kind, NEW.partner, NEW.at, NEW.hash)
            IS DISTINCT FROM (OLD.idx, OLD.id, OLD.kind, OLD.partner, OLD.at, OLD.hash)
            OR octet_length(NEW.body) <> 0 OR octet_length(NEW.salt) <> 0 THEN
            RAISE EXCEPTION 'evidence is append-only: the only change allowed is erasure, body and salt both set to empty'
                USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'evidence is append-only' USING ERRCODE = 'restrict_violation';
END;
$$;
-- +goose StatementEnd
