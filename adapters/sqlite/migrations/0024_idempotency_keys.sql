-- +goose Up
-- +goose StatementBegin
-- 0024: idempotency keys of POST /v1/checks (Idempotency-Key). A check
-- sent with a key holds it in its body (idempotency_key); the appending
-- transaction maps (partner, key) to the check here, so that a retry of a
-- check whose answer was lost replays the check recorded first instead of
-- recording another, on every replica and after a restart. Only keyed
-- checks write a row: a keyless check writes no index more. One B-tree
-- (WITHOUT ROWID): a lookup is the first row of a partner's key at or
-- after the key's lifetime ago (24 hours), and rows outlive it harmlessly.
CREATE TABLE check_idempotency (
    partner    TEXT    NOT NULL,
    idem_key   TEXT    NOT NULL,
    checked_at INTEGER NOT NULL,
    check_id   TEXT    NOT NULL,
    PRIMARY KEY (partner, idem_key, checked_at, check_id)
) STRICT, WITHOUT ROWID;
-- +goose StatementEnd
