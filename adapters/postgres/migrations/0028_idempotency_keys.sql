-- +goose Up
-- +goose StatementBegin
-- 0028: idempotency keys of POST /v1/checks (Idempotency-Key). A check
-- sent with a key holds it in its body (idempotency_key); the appending
-- transaction maps (partner, key) to the check here, so that a retry of a
-- check whose answer was lost replays the check recorded first instead of
-- recording another, on every replica and after a restart. Only keyed
-- checks write a row (the store sends the insert only for a batch that has
-- one): a keyless check writes no index more, and the evidence triggers
-- are unchanged. A new table: no lock on any existing one is taken. A
-- lookup is the first row of a partner's key at or after the key's
-- lifetime ago (24 hours); rows outlive it harmlessly.
CREATE TABLE check_idempotency (
    partner    text        NOT NULL,
    idem_key   text        NOT NULL,
    checked_at timestamptz NOT NULL,
    check_id   text        NOT NULL,
    PRIMARY KEY (partner, idem_key, checked_at, check_id)
);
-- +goose StatementEnd
