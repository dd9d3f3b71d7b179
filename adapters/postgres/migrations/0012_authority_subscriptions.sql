-- +goose Up
-- +goose StatementBegin
-- 0012: departments subscribe by measure authority. A partner registered
-- for a department (the 实施部门 responsible for measures) holds the
-- authorities it answers for, spelled as the catalogue spells a measure's
-- authority, and is told of every change that brings a measure of one of
-- them into or out of force, for any subject. The fan-out reads the whole
-- table once per batch: it holds a few rows per department, never a row
-- per subject.
CREATE TABLE authority_subscriptions (
    partner    text        NOT NULL,
    authority  text        NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (partner, authority)
);
-- +goose StatementEnd
