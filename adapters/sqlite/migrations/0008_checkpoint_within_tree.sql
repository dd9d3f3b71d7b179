-- +goose Up
-- +goose StatementBegin
-- A checkpoint row only for a size the committed tree has, and at the
-- tree's own size only with the tree's root: AddCheckpoint already checks
-- this, and the database now holds rows inserted by hand to it too, so a
-- forged row beyond the tree is refused where it is written rather than
-- only ignored where it is read. (A root at an earlier size needs the
-- tree's nodes to check; AddCheckpoint and the readers do that.)
CREATE TRIGGER evidence_checkpoints_within_tree BEFORE INSERT ON evidence_checkpoints
WHEN NEW.size > (SELECT size FROM evidence_tree_head WHERE id = 1)
  OR (NEW.size = (SELECT size FROM evidence_tree_head WHERE id = 1)
      AND NEW.root IS NOT (SELECT root FROM evidence_tree_head WHERE id = 1))
BEGIN
    SELECT RAISE(ABORT, 'evidence checkpoint refused: beyond the tree''s size, or not the tree''s root at its size');
END;
-- +goose StatementEnd
