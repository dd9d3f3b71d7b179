-- +goose Up
-- +goose StatementBegin
-- 0015: the tree's nodes keyed by the order in which they complete. Keyed by
-- (level, idx), the nodes of one commit went to the end of each level's range
-- of the B-tree: about one page per level, 13 of a commit's ~87 WAL frames
-- (0.5 per check) at saturation. pos = last leaf covered × 64 + level grows
-- with every append (a node is written when its last leaf is), so a commit's
-- nodes are now the end of one B-tree: a page or two. level and idx stay as
-- columns (the readers' key; pos is computed from them: sqlcommon.NodePos),
-- the CHECK keeps the three in step.
CREATE TABLE evidence_nodes_0015 (
    pos   INTEGER NOT NULL PRIMARY KEY,
    level INTEGER NOT NULL CHECK (level BETWEEN 0 AND 57),
    idx   INTEGER NOT NULL CHECK (idx >= 0 AND idx < (1 << (57 - level))),
    hash  BLOB    NOT NULL CHECK (length(hash) = 32),
    CHECK (pos = (((idx + 1) << level) - 1) * 64 + level)
) STRICT;

INSERT INTO evidence_nodes_0015 (pos, level, idx, hash)
SELECT (((idx + 1) << level) - 1) * 64 + level, level, idx, hash FROM evidence_nodes
ORDER BY 1;

DROP TABLE evidence_nodes;
ALTER TABLE evidence_nodes_0015 RENAME TO evidence_nodes;

CREATE TRIGGER evidence_nodes_no_delete BEFORE DELETE ON evidence_nodes
BEGIN
    SELECT RAISE(ABORT, 'evidence tree is append-only');
END;

CREATE TRIGGER evidence_nodes_no_update BEFORE UPDATE ON evidence_nodes
BEGIN
    SELECT RAISE(ABORT, 'evidence tree is append-only');
END;
-- +goose StatementEnd
