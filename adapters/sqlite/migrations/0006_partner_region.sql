-- +goose Up
-- A partner's jurisdiction (GB/T 2260 code): measures scoped to a region
-- apply only to partners within it; '' is national measures only.
ALTER TABLE partners ADD COLUMN region TEXT NOT NULL DEFAULT '';
