-- +goose Up
-- +goose StatementBegin
-- 0012: departments subscribe by measure authority: the authorities a
-- partner registered for a department answers for, spelled as the
-- catalogue spells a measure's authority. The fan-out reads the whole
-- table once per batch (a few rows per department, none per subject).
CREATE TABLE authority_subscriptions (
    partner    TEXT    NOT NULL,
    authority  TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (partner, authority)
) STRICT, WITHOUT ROWID;
-- +goose StatementEnd
