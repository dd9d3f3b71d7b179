-- +goose Up
-- +goose StatementBegin
-- 0023: the verifier keys that signed checkpoints are append-only, like
-- the checkpoints they verify. Deleting an old key from this table left
-- GET /v1/evidence/keys listing only the current one: an auditor given
-- that list could no longer verify a receipt signed before a rotation,
-- and nothing showed a key had been there.
CREATE TRIGGER evidence_keys_no_delete BEFORE DELETE ON evidence_keys
BEGIN
    SELECT RAISE(ABORT, 'evidence verifier keys are append-only');
END;

CREATE TRIGGER evidence_keys_no_update BEFORE UPDATE ON evidence_keys
BEGIN
    SELECT RAISE(ABORT, 'evidence verifier keys are append-only');
END;
-- +goose StatementEnd

