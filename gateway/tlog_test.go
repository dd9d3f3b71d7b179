package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/credgate/credgate/evidence"
)

// appendRecords commits n records straight to the store, as checks would.
func (h *harness) appendRecords(n int) {
	h.t.Helper()
	recs := make([]evidence.Record, n)
	for i := range recs {
		recs[i] = evidence.Record{ID: fmt.Sprintf("chk_tlog_%d_%d", time.Now().UnixNano(), i), Kind: evidence.KindCheck,
			Partner: "bank", At: time.Now(), Body: []byte(`{"outcome":"clear"}`)}
		if err := recs[i].Seal(); err != nil {
			h.t.Fatal(err)
		}
	}
	first, err := h.store.AppendBatch(context.Background(), recs)
	if err != nil {
		h.t.Fatal(err)
	}
	// The harness signs on demand only (no Run goroutine): sign now, as
	// Run would within a second.
	if _, err := h.evidence.Covering(context.Background(), first+uint64(n)); err != nil {
		h.t.Fatal(err)
	}
}

// tlogCheckpoint fetches /v1/evidence/tlog/checkpoint and verifies it.
func (h *harness) tlogCheckpoint() evidence.SignedCheckpoint {
	h.t.Helper()
	res := h.do(http.MethodGet, "/v1/evidence/tlog/checkpoint", "", "", nil)
	if res.Status != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		h.t.Fatalf("checkpoint: %d %s: %s", res.Status, res.Header.Get("Content-Type"), res.Body)
	}
	cp, err := evidence.OpenCheckpoint(res.Body, h.verifiers(), testEvidenceOrigin)
	if err != nil {
		h.t.Fatalf("checkpoint: %v\n%s", err, res.Body)
	}
	return cp
}

// httpTiles fetches tiles from the gateway, checking how each may be
// cached: hash tiles anonymously, entry bundles with token (an auditor's).
type httpTiles struct {
	h     *harness
	token string
}

func (f httpTiles) get(path string, full bool) []byte {
	f.h.t.Helper()
	tok := ""
	if strings.HasPrefix(path, "tile/entries/") {
		tok = f.token
	}
	res := f.h.do(http.MethodGet, "/v1/evidence/tlog/"+path, tok, "", nil)
	if res.Status != http.StatusOK {
		f.h.t.Fatalf("%s: %d %s", path, res.Status, res.Body)
	}
	// Entry bundles answer authenticated callers: never kept by a shared
	// cache.
	scope := "public"
	if tok != "" {
		scope = "private"
	}
	want := scope + ", max-age=3600"
	if full {
		want = scope + ", max-age=31536000, immutable"
	}
	if got := res.Header.Get("Cache-Control"); got != want {
		f.h.t.Errorf("%s: Cache-Control %q, want %q", path, got, want)
	}
	return res.Body
}

func (f httpTiles) Tile(_ context.Context, t evidence.TileCoord) ([]byte, error) {
	return f.get(t.Path(), t.Full()), nil
}

// TestTlogTiles follows the log as a tlog-tiles client knowing nothing of
// credgate would: the signed checkpoint, the entry bundles hashed as RFC
// 6962 leaves, and inclusion and consistency proofs verified by
// transparency-dev/merkle against the signed roots.
func TestTlogTiles(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.appendRecords(200)
	cp1 := h.tlogCheckpoint()
	h.appendRecords(400) // past two full tiles: a full level-0 tile, a partial level-1 tile
	cp2 := h.tlogCheckpoint()
	if cp2.Size < cp1.Size+400 || cp1.Size < 200 {
		t.Fatalf("checkpoint sizes %d then %d", cp1.Size, cp2.Size)
	}
	tiles := httpTiles{h, h.auditorToken()}
	hasher := rfc6962.DefaultHasher

	// Entry bundles name each record's partner and time: not for anyone.
	if res := h.do(http.MethodGet, "/v1/evidence/tlog/tile/entries/000", "", "", nil); res.Status != http.StatusUnauthorized {
		t.Fatalf("anonymous entry bundle: %d %s", res.Status, res.Body)
	}
	if res := h.do(http.MethodGet, "/v1/evidence/tlog/tile/0/000", "", "", nil); res.Status != http.StatusOK {
		t.Fatalf("anonymous hash tile: %d %s", res.Status, res.Body)
	}

	// Every entry of every bundle, hashed as an RFC 6962 leaf, rebuilds the
	// signed root.
	var leaves [][]byte
	for n := uint64(0); n*evidence.TileWidth < cp2.Size; n++ {
		c := evidence.TileCoord{Entries: true, Index: n, Width: evidence.TileWidthAt(0, n, cp2.Size)}
		entries, err := evidence.ParseEntryBundle(tiles.get(c.Path(), c.Full()))
		if err != nil || len(entries) != c.Width {
			t.Fatalf("%s: %d entries, %v", c.Path(), len(entries), err)
		}
		for _, e := range entries {
			if !bytes.HasPrefix(e, []byte("credgate-evidence-v1\nid ")) {
				t.Fatalf("entry is not credgate leaf data: %q", e)
			}
			leaves = append(leaves, hasher.HashLeaf(e))
		}
	}
	rng := (&compact.RangeFactory{Hash: hasher.HashChildren}).NewEmptyRange(0)
	for _, l := range leaves {
		if err := rng.Append(l, nil); err != nil {
			t.Fatal(err)
		}
	}
	root, err := rng.GetRootHash(nil)
	if err != nil || !bytes.Equal(root, cp2.Root[:]) {
		t.Fatalf("the entry bundles do not rebuild the signed root (%v)", err)
	}

	// Proofs from the hash tiles alone.
	nodes := evidence.NewTileNodes(tiles, cp2.Size)
	for _, idx := range []uint64{0, 1, 255, 256, cp1.Size - 1, cp2.Size - 1} {
		p, err := evidence.InclusionProof(context.Background(), nodes, idx, cp2.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyInclusion(hasher, idx, cp2.Size, leaves[idx], bytesOf(p), cp2.Root[:]); err != nil {
			t.Errorf("inclusion of %d in %d: %v", idx, cp2.Size, err)
		}
	}
	p, err := evidence.ConsistencyProof(context.Background(), nodes, cp1.Size, cp2.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyConsistency(hasher, cp1.Size, cp2.Size, bytesOf(p), cp1.Root[:], cp2.Root[:]); err != nil {
		t.Fatalf("consistency %d → %d: %v", cp1.Size, cp2.Size, err)
	}
	// A level-1 hash is the root of its 256 leaves.
	up := tiles.get(evidence.TileCoord{Level: 1, Index: 0, Width: 2}.Path(), false)
	first := (&compact.RangeFactory{Hash: hasher.HashChildren}).NewEmptyRange(0)
	for _, l := range leaves[256:512] {
		_ = first.Append(l, nil)
	}
	if r, _ := first.GetRootHash(nil); !bytes.Equal(up[32:64], r) {
		t.Error("level 1 tile hash 1 is not the root of leaves 256…511")
	}

	// Beyond the tree, and malformed: 404 problems, not cached.
	for _, path := range []string{
		evidence.TileCoord{Level: 0, Index: cp2.Size/256 + 1, Width: 256}.Path(),
		evidence.TileCoord{Entries: true, Index: 0, Width: 256}.Path() + "/extra",
		"tile/0/01", "tile/8/000", "tile/0/000.p/0", "tile/",
	} {
		res := h.do(http.MethodGet, "/v1/evidence/tlog/"+path, tiles.token, "", nil)
		problemCode(t, res, http.StatusNotFound, "not_found")
		if cc := res.Header.Get("Cache-Control"); strings.Contains(cc, "immutable") {
			t.Errorf("%s: a refusal is cached: %q", path, cc)
		}
	}
}

func bytesOf(p [][evidence.HashSize]byte) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}
