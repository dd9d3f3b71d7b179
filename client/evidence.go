package client

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/credgate/credgate/evidence"
)

// The evidence log's routes. Keys, checkpoints, consistency proofs and the
// tlog-tiles are public (no credential needed); receipts and leaves are
// authenticated.

// LogKey is one key that signs (or signed) the log's checkpoints.
type LogKey struct {
	Key     string    `json:"key"`
	Name    string    `json:"name"`
	Current bool      `json:"current"`
	AddedAt time.Time `json:"added_at"`
}

// LogKeys is GET /v1/evidence/keys. Pin these out of band: a key fetched
// from the server it is to check proves nothing against that server.
type LogKeys struct {
	Origin string   `json:"origin"`
	Keys   []LogKey `json:"keys"`
}

// EvidenceKeys reads the log's verifier keys.
func (c *Client) EvidenceKeys(ctx context.Context) (LogKeys, error) {
	var k LogKeys
	err := c.DoPublic(ctx, http.MethodGet, "/v1/evidence/keys", &k)
	return k, err
}

// Checkpoint returns the latest signed checkpoint note, unverified: open it
// with evidence.OpenCheckpoint and pinned keys.
func (c *Client) Checkpoint(ctx context.Context) ([]byte, error) {
	var b []byte
	err := c.DoPublic(ctx, http.MethodGet, "/v1/evidence/tlog/checkpoint", &b)
	return b, err
}

// Consistency is the proof that the tree of size to extends the tree of
// size from.
func (c *Client) Consistency(ctx context.Context, from, to uint64) ([][evidence.HashSize]byte, error) {
	var view struct {
		Proof []string `json:"proof"`
	}
	q := url.Values{"from": {strconv.FormatUint(from, 10)}, "to": {strconv.FormatUint(to, 10)}}
	if err := c.DoPublic(ctx, http.MethodGet, "/v1/evidence/consistency?"+q.Encode(), &view); err != nil {
		return nil, err
	}
	return decodeProof(view.Proof)
}

// maxProofLen bounds a proof's hashes (2·64 covers any tree).
const maxProofLen = 128

func decodeProof(in []string) ([][evidence.HashSize]byte, error) {
	if len(in) > maxProofLen {
		return nil, fmt.Errorf("%w: a proof of %d hashes", ErrResponse, len(in))
	}
	out := make([][evidence.HashSize]byte, len(in))
	for i, s := range in {
		b, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil || len(b) != evidence.HashSize {
			return nil, fmt.Errorf("%w: proof hash %d is not base64 of %d bytes", ErrResponse, i, evidence.HashSize)
		}
		out[i] = [evidence.HashSize]byte(b)
	}
	return out, nil
}

// Tile fetches a tlog-tiles hash tile (public) or entry bundle (with the
// client's administrator or auditor credential). It implements
// evidence.TileFetcher, so that proofs can be built from tiles:
// evidence.NewTileNodes(c, size).
func (c *Client) Tile(ctx context.Context, t evidence.TileCoord) ([]byte, error) {
	var b []byte
	if t.Entries {
		err := c.Do(ctx, http.MethodGet, "/v1/evidence/tlog/"+t.Path(), nil, "", &b)
		return b, err
	}
	err := c.DoPublic(ctx, http.MethodGet, "/v1/evidence/tlog/"+t.Path(), &b)
	return b, err
}

// Receipt fetches a record's receipt, verbatim (a partner gets its own
// records'; administrators and auditors any). Keep the bytes: they verify
// offline with client/audit.VerifyReceipt. A check answered with a spooled
// receipt (CheckReceipt.Spooled) has none until the replica has integrated
// its spool: until then the replica that spooled it answers 404
// receipt_pending with Retry-After (IsReceiptPending; *Error.RetryAfter),
// not not_found; another replica, which cannot know, answers not_found.
// Keep the answer's Promise and ask again later.
func (c *Client) Receipt(ctx context.Context, recordID string) ([]byte, error) {
	var b []byte
	err := c.Do(ctx, http.MethodGet, "/v1/evidence/receipts/"+url.PathEscape(recordID), nil, "", &b)
	return b, err
}

// Leaves reads positions [from, to) of the log (at most
// evidence.MaxAuditPage) with the record stored at each, for
// administrators and auditors.
func (c *Client) Leaves(ctx context.Context, from, to uint64) ([]evidence.AuditLeaf, error) {
	var page struct {
		Leaves []struct {
			Index    uint64 `json:"index"`
			TreeLeaf string `json:"tree_leaf"`
			Record   *struct {
				ID         string        `json:"id"`
				Kind       evidence.Kind `json:"kind"`
				Partner    string        `json:"partner"`
				At         time.Time     `json:"at"`
				RecordHash string        `json:"record_hash"`
			} `json:"record"`
			Body  evidence.BodyStatus `json:"body"`
			Nodes []struct {
				Level uint   `json:"level"`
				Index uint64 `json:"index"`
				Hash  string `json:"hash"`
			} `json:"nodes"`
		} `json:"leaves"`
	}
	q := url.Values{"from": {strconv.FormatUint(from, 10)}, "to": {strconv.FormatUint(to, 10)}}
	if err := c.Do(ctx, http.MethodGet, "/v1/evidence/leaves?"+q.Encode(), nil, "", &page); err != nil {
		return nil, err
	}
	out := make([]evidence.AuditLeaf, len(page.Leaves))
	for i, l := range page.Leaves {
		leaf, err := decodeHex32(l.TreeLeaf)
		if err != nil {
			return nil, fmt.Errorf("%w: leaf %d: %w", ErrResponse, l.Index, err)
		}
		out[i] = evidence.AuditLeaf{Index: l.Index, TreeLeaf: leaf, Body: l.Body}
		if len(l.Nodes) > 64 {
			return nil, fmt.Errorf("%w: leaf %d: %d nodes", ErrResponse, l.Index, len(l.Nodes))
		}
		for _, n := range l.Nodes {
			h, err := decodeHex32(n.Hash)
			if err != nil {
				return nil, fmt.Errorf("%w: node %d/%d: %w", ErrResponse, n.Level, n.Index, err)
			}
			out[i].Nodes = append(out[i].Nodes, evidence.Node{ID: evidence.NodeID{Level: n.Level, Index: n.Index}, Hash: h})
		}
		if l.Record == nil {
			out[i].Body = evidence.BodyMissing
			continue
		}
		rh, err := decodeHex32(l.Record.RecordHash)
		if err != nil {
			return nil, fmt.Errorf("%w: record %d: %w", ErrResponse, l.Index, err)
		}
		out[i].Record = evidence.Record{Index: l.Index, ID: l.Record.ID, Kind: l.Record.Kind, Partner: l.Record.Partner,
			At: l.Record.At, Hash: rh}
	}
	return out, nil
}

func decodeHex32(s string) ([evidence.HashSize]byte, error) {
	var h [evidence.HashSize]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != evidence.HashSize {
		return h, fmt.Errorf("not a hex hash")
	}
	copy(h[:], b)
	return h, nil
}
