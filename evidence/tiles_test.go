package evidence_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/credgate/credgate/evidence"
)

func TestTilePathSpecExamples(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		coord evidence.TileCoord
		path  string
	}{
		// The examples of c2sp.org/tlog-tiles.
		{evidence.TileCoord{Level: 0, Index: 1234067, Width: 256}, "tile/0/x001/x234/067"},
		{evidence.TileCoord{Level: 0, Index: 1234067, Width: 8}, "tile/0/x001/x234/067.p/8"},
		{evidence.TileCoord{Entries: true, Index: 1234067, Width: 256}, "tile/entries/x001/x234/067"},
		{evidence.TileCoord{Level: 2, Index: 0, Width: 1}, "tile/2/000.p/1"},
		{evidence.TileCoord{Level: 1, Index: 1000, Width: 256}, "tile/1/x001/000"},
	} {
		if got := c.coord.Path(); got != c.path {
			t.Errorf("%+v: path %q, want %q", c.coord, got, c.path)
		}
		got, err := evidence.ParseTilePath(c.path[len("tile/"):])
		if err != nil || got != c.coord {
			t.Errorf("parse %q: %+v, %v; want %+v", c.path, got, err, c.coord)
		}
	}
	for _, bad := range []string{"", "0", "0/", "8/000", "01/000", "0/1", "0/0000", "0/x000/001", "0/x01/001",
		"0/001/x002", "0/000.p/0", "0/000.p/256", "0/000.p/08", "0/000.p/", "entries/000/", "0/-01", "x/000",
		"0/x18446744073709551/615", "0/x999/x999/x999/x999/x999/x999/x999/999"} {
		if _, err := evidence.ParseTilePath(bad); !errors.Is(err, evidence.ErrNoTile) {
			t.Errorf("ParseTilePath(%q) = %v, want ErrNoTile", bad, err)
		}
	}
}

// logOf builds a log of n records in memory.
func logOf(t *testing.T, n int) (*evidence.Log, *memStore, []evidence.Record) {
	t.Helper()
	st := newMemStore()
	recs := make([]evidence.Record, n)
	at := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	for i := range recs {
		recs[i] = evidence.Record{ID: fmt.Sprintf("chk_%04d", i), Kind: evidence.KindCheck, Partner: "bank",
			At: at.Add(time.Duration(i) * time.Second), Body: []byte(fmt.Sprintf(`{"n":%d}`, i))}
		if err := recs[i].Seal(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.AppendBatch(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		recs[i].Index = uint64(i)
	}
	return evidence.NewLog(st, newSigner(t, "credgate.test")), st, recs
}

// logTiles fetches tiles from a Log as a tlog-tiles server would serve them.
type logTiles struct {
	log     *evidence.Log
	fetches int
}

func (f *logTiles) Tile(ctx context.Context, t evidence.TileCoord) ([]byte, error) {
	f.fetches++
	return f.log.Tile(ctx, t)
}

func TestTilesAndBundles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const n = 700 // two full tiles and a partial one at level 0; a partial at level 1
	lg, _, recs := logOf(t, n)

	leaves := make([][evidence.HashSize]byte, n)
	for i, r := range recs {
		leaves[i] = evidence.LeafHash(r)
	}
	// Level 0, tile 1: leaves 256…511.
	tile, err := lg.Tile(ctx, evidence.TileCoord{Level: 0, Index: 1, Width: 256})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 256 {
		if !bytes.Equal(tile[i*32:(i+1)*32], leaves[256+i][:]) {
			t.Fatalf("level 0 tile 1 hash %d is not leaf %d", i, 256+i)
		}
	}
	// Level 0, tile 2 is partial (700-512 = 188): a narrower one is its
	// prefix, a wider one does not exist.
	if w := evidence.TileWidthAt(0, 2, n); w != 188 {
		t.Fatalf("width of tile 0/2: %d", w)
	}
	part, err := lg.Tile(ctx, evidence.TileCoord{Level: 0, Index: 2, Width: 100})
	if err != nil || len(part) != 100*32 || !bytes.Equal(part[99*32:], leaves[611][:]) {
		t.Fatalf("partial tile: %d bytes, %v", len(part), err)
	}
	for _, c := range []evidence.TileCoord{{Level: 0, Index: 2, Width: 189}, {Level: 0, Index: 3, Width: 1},
		{Level: 1, Index: 0, Width: 3}, {Level: 2, Index: 0, Width: 1}, {Level: 0, Index: 1 << 60, Width: 256}} {
		if _, err := lg.Tile(ctx, c); !errors.Is(err, evidence.ErrNoTile) {
			t.Errorf("%s: %v, want ErrNoTile", c.Path(), err)
		}
	}
	// Level 1, tile 0 has two hashes: the roots of leaves 0…255 and
	// 256…511, computed here the slow way.
	up, err := lg.Tile(ctx, evidence.TileCoord{Level: 1, Index: 0, Width: 2})
	if err != nil {
		t.Fatal(err)
	}
	for k := range 2 {
		want := referenceRoot(leaves[k*256 : (k+1)*256])
		if !bytes.Equal(up[k*32:(k+1)*32], want[:]) {
			t.Errorf("level 1 hash %d is not the root of leaves %d…%d", k, k*256, (k+1)*256-1)
		}
	}

	// Entry bundles hold the bytes whose RFC 6962 leaf hash is the leaf.
	b, err := lg.EntryBundle(ctx, evidence.TileCoord{Entries: true, Index: 2, Width: 188})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := evidence.ParseEntryBundle(b)
	if err != nil || len(entries) != 188 {
		t.Fatalf("bundle: %d entries, %v", len(entries), err)
	}
	for i, e := range entries {
		if got := rfc6962.DefaultHasher.HashLeaf(e); !bytes.Equal(got, leaves[512+i][:]) {
			t.Fatalf("entry %d does not hash to its leaf", 512+i)
		}
	}
	if _, err := lg.EntryBundle(ctx, evidence.TileCoord{Entries: true, Index: 2, Width: 256}); !errors.Is(err, evidence.ErrNoTile) {
		t.Errorf("full bundle 2 of a tree of 700: %v", err)
	}
}

func TestEntryBundleMissingRecord(t *testing.T) {
	t.Parallel()
	lg, st, _ := logOf(t, 10)
	st.mu.Lock()
	st.recs = append(st.recs[:4], st.recs[5:]...)
	st.mu.Unlock()
	_, err := lg.EntryBundle(context.Background(), evidence.TileCoord{Entries: true, Width: 10})
	if !errors.Is(err, evidence.ErrTreeCorrupt) {
		t.Fatalf("bundle with a record deleted: %v, want ErrTreeCorrupt", err)
	}
}

// TestTileNodesProofs: proofs built from tiles alone are the proofs the
// store's nodes give, for every kind of position in a tree spanning two
// tile levels.
func TestTileNodesProofs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const n = 66000 // > 256² leaves: level-2 tiles exist
	lg, st, recs := logOf(t, n)
	for _, size := range []uint64{1, 255, 256, 257, 511, 65535, 65536, 65537, n} {
		f := &logTiles{log: lg}
		tn := evidence.NewTileNodes(f, size)
		root, err := evidence.RootAt(ctx, tn, size)
		if err != nil {
			t.Fatal(err)
		}
		want, err := evidence.RootAt(ctx, st, size)
		if err != nil || root != want {
			t.Fatalf("size %d: root from tiles differs (%v)", size, err)
		}
		for _, idx := range []uint64{0, size / 3, size / 2, size - 1} {
			p, err := evidence.InclusionProof(ctx, tn, idx, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := evidence.VerifyInclusion(evidence.LeafHash(recs[idx]), idx, size, p, root); err != nil {
				t.Fatalf("inclusion of %d in %d from tiles: %v", idx, size, err)
			}
		}
		for _, from := range []uint64{1, size / 2, size - 1} {
			if from == 0 {
				continue
			}
			old, err := evidence.RootAt(ctx, st, from)
			if err != nil {
				t.Fatal(err)
			}
			p, err := evidence.ConsistencyProof(ctx, tn, from, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := evidence.VerifyConsistency(from, size, p, old, root); err != nil {
				t.Fatalf("consistency %d→%d from tiles: %v", from, size, err)
			}
		}
		if f.fetches > 40 {
			t.Errorf("size %d: %d tile fetches for a handful of proofs", size, f.fetches)
		}
	}
}
