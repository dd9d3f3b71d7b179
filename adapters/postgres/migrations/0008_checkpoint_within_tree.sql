-- +goose Up
-- +goose StatementBegin
-- A checkpoint row only for a size the committed tree has, and at the
-- tree's own size only with the tree's root: AddCheckpoint already checks
-- this, and the database now holds rows inserted by hand to it too, so a
-- forged row beyond the tree is refused where it is written rather than
-- only ignored where it is read. (A root at an earlier size needs the
-- tree's nodes to check; AddCheckpoint and the readers do that.)
CREATE FUNCTION evidence_checkpoint_within_tree() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    head_size bigint;
    head_root bytea;
BEGIN
    SELECT size, root INTO head_size, head_root FROM evidence_tree_head WHERE id = 1;
    IF NEW.size > head_size THEN
        RAISE EXCEPTION 'evidence checkpoint of % records refused: the tree has %', NEW.size, head_size
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.size = head_size AND NEW.root <> head_root THEN
        RAISE EXCEPTION 'evidence checkpoint of % records refused: its root is not the tree''s', NEW.size
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER evidence_checkpoints_within_tree BEFORE INSERT ON evidence_checkpoints
    FOR EACH ROW EXECUTE FUNCTION evidence_checkpoint_within_tree();
-- +goose StatementEnd
