-- +goose Up
-- +goose StatementBegin
-- 0027: the verifier keys that signed checkpoints are append-only, like
-- the checkpoints they verify (0002's evidence_tree_append_only). Deleting
-- an old key left GET /v1/evidence/keys listing only the current one: an
-- auditor given that list could no longer verify a receipt signed before
-- a rotation, and nothing showed a key had been there.
CREATE TRIGGER evidence_keys_no_rewrite BEFORE UPDATE OR DELETE ON evidence_keys
    FOR EACH ROW EXECUTE FUNCTION evidence_tree_append_only();
CREATE TRIGGER evidence_keys_no_truncate BEFORE TRUNCATE ON evidence_keys
    FOR EACH STATEMENT EXECUTE FUNCTION evidence_tree_append_only();
-- +goose StatementEnd

