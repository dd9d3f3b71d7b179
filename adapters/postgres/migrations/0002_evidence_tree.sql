-- +goose Up
-- +goose StatementBegin
-- The evidence log's Merkle tree (RFC 6962 hashing), its signed checkpoints
-- and the keys that sign them. Written by AppendBatch in the same
-- transaction as the records it covers, under the append advisory lock, so
-- that several gateways sharing the database grow one tree.

-- Every perfect subtree's hash: node (level, idx) covers leaves
-- [idx * 2^level, (idx + 1) * 2^level). A node is written once, when its
-- last leaf is appended, and never changes, so a proof at any tree size is
-- a handful of primary-key reads.
CREATE TABLE evidence_nodes (
    level smallint NOT NULL CHECK (level BETWEEN 0 AND 63),
    idx   bigint   NOT NULL CHECK (idx >= 0),
    hash  bytea    NOT NULL CHECK (octet_length(hash) = 32),
    PRIMARY KEY (level, idx)
);

-- The tree as last committed: its size, root and right border (the
-- hashes of the perfect subtrees covering [0, size), concatenated), from
-- which the next batch is integrated without reading other nodes. Records
-- appended before this migration are integrated by the first AppendBatch.
CREATE TABLE evidence_tree_head (
    id     smallint NOT NULL PRIMARY KEY CHECK (id = 1),
    size   bigint   NOT NULL CHECK (size >= 0),
    root   bytea    NOT NULL CHECK (octet_length(root) = 32),
    border bytea    NOT NULL
);

INSERT INTO evidence_tree_head (id, size, root, border)
VALUES (1, 0, '\xe3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', '\x');

-- Signed checkpoints (C2SP signed notes), one per tree size at most.
CREATE TABLE evidence_checkpoints (
    size       bigint      NOT NULL PRIMARY KEY CHECK (size >= 0),
    root       bytea       NOT NULL CHECK (octet_length(root) = 32),
    note       bytea       NOT NULL,
    created_at timestamptz NOT NULL
);

-- Every verifier key that has signed a checkpoint, so that rotation keeps
-- old checkpoints verifiable.
CREATE TABLE evidence_keys (
    vkey     text        NOT NULL PRIMARY KEY,
    added_at timestamptz NOT NULL
);

-- Nodes and checkpoints are append-only like the records.
CREATE FUNCTION evidence_tree_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER evidence_nodes_no_rewrite BEFORE UPDATE OR DELETE ON evidence_nodes
    FOR EACH ROW EXECUTE FUNCTION evidence_tree_append_only();
CREATE TRIGGER evidence_nodes_no_truncate BEFORE TRUNCATE ON evidence_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION evidence_tree_append_only();
CREATE TRIGGER evidence_checkpoints_no_rewrite BEFORE UPDATE OR DELETE ON evidence_checkpoints
    FOR EACH ROW EXECUTE FUNCTION evidence_tree_append_only();
CREATE TRIGGER evidence_checkpoints_no_truncate BEFORE TRUNCATE ON evidence_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION evidence_tree_append_only();
-- +goose StatementEnd
