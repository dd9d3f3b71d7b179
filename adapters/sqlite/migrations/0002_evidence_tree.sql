-- +goose Up
-- +goose StatementBegin
-- The evidence log's Merkle tree (RFC 6962 hashing), its signed checkpoints
-- and the keys that sign them. Written by AppendBatch in the same
-- transaction as the records it covers.

-- Every perfect subtree's hash: node (level, idx) covers leaves
-- [idx * 2^level, (idx + 1) * 2^level). A node is written once, when its
-- last leaf is appended, and never changes, so a proof at any tree size is
-- a handful of primary-key reads.
CREATE TABLE evidence_nodes (
    level INTEGER NOT NULL CHECK (level BETWEEN 0 AND 63),
    idx   INTEGER NOT NULL CHECK (idx >= 0),
    hash  BLOB    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER evidence_nodes_no_delete BEFORE DELETE ON evidence_nodes
BEGIN
    SELECT RAISE(ABORT, 'evidence tree is append-only');
END;

CREATE TRIGGER evidence_nodes_no_update BEFORE UPDATE ON evidence_nodes
BEGIN
    SELECT RAISE(ABORT, 'evidence tree is append-only');
END;

-- The tree as last committed: its size, root and right border (the
-- hashes of the perfect subtrees covering [0, size), concatenated), from
-- which the next batch is integrated without reading other nodes. Records
-- appended before this migration are integrated by the first AppendBatch.
CREATE TABLE evidence_tree_head (
    id     INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    size   INTEGER NOT NULL CHECK (size >= 0),
    root   BLOB    NOT NULL CHECK (length(root) = 32),
    border BLOB    NOT NULL
) STRICT;

INSERT INTO evidence_tree_head (id, size, root, border)
VALUES (1, 0, x'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', x'');

-- Signed checkpoints (C2SP signed notes), one per tree size at most.
CREATE TABLE evidence_checkpoints (
    size       INTEGER NOT NULL PRIMARY KEY CHECK (size >= 0),
    root       BLOB    NOT NULL CHECK (length(root) = 32),
    note       BLOB    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TRIGGER evidence_checkpoints_no_delete BEFORE DELETE ON evidence_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'evidence checkpoints are append-only');
END;

CREATE TRIGGER evidence_checkpoints_no_update BEFORE UPDATE ON evidence_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'evidence checkpoints are append-only');
END;

-- Every verifier key that has signed a checkpoint, so that rotation keeps
-- old checkpoints verifiable.
CREATE TABLE evidence_keys (
    vkey     TEXT    NOT NULL PRIMARY KEY,
    added_at INTEGER NOT NULL
) STRICT;
-- +goose StatementEnd
