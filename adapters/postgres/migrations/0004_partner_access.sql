-- +goose Up
-- +goose StatementBegin
-- Partner access (issue 4): credentials with rotation overlap and public
-- keys (private_key_jwt), per-partner scope and request quota.
-- credentials: JSON array of service.Credential (hashes and public keys
-- only, never a secret); each JWK is a JSON string inside it, so jsonb's
-- normalisation leaves it byte for byte. The existing secret_hash column
-- keeps the current secret's hash; rows without credentials are read as
-- holding that one secret.
ALTER TABLE partners ADD COLUMN credentials   jsonb NOT NULL DEFAULT '[]';
ALTER TABLE partners ADD COLUMN subject_kinds jsonb NOT NULL DEFAULT '[]';
ALTER TABLE partners ADD COLUMN visibility    text  NOT NULL DEFAULT '';
ALTER TABLE partners ADD COLUMN rate_limit    text  NOT NULL DEFAULT '';

-- Administrative acts are read back by kind (GET /v1/admin/acts); checks
-- vastly outnumber them, so the scan must not walk the checks.
CREATE INDEX evidence_kind ON evidence (kind, idx);
-- +goose StatementEnd
