package sqlite

import (
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/internal/sqlcommon"
	"github.com/credgate/credgate/evidence"
)

// walFramePages returns the page number of every frame in the WAL's current
// generation, in order, and how many of them end a commit. A frame is of the
// current generation while its salts are the header's (SQLite's WAL format:
// a 32-byte header, then 24-byte frame headers each before a page).
func walFramePages(t *testing.T, dir string) (pages []uint32, commits int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, FileName+"-wal"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 32 {
		return nil, 0
	}
	pageSize := int(binary.BigEndian.Uint32(b[8:]))
	salts := b[16:24]
	for off := 32; off+24+pageSize <= len(b); off += 24 + pageSize {
		h := b[off : off+24]
		if string(h[8:16]) != string(salts) {
			break
		}
		pages = append(pages, binary.BigEndian.Uint32(h))
		if binary.BigEndian.Uint32(h[4:]) != 0 {
			commits++
		}
	}
	return pages, commits
}

// btreeOfPage maps each page of the database to the table or index it
// belongs to (the dbstat virtual table).
func btreeOfPage(t *testing.T, s *Store) map[uint32]string {
	t.Helper()
	rows, err := s.r.QueryContext(t.Context(), `SELECT pageno, name FROM dbstat`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[uint32]string{}
	for rows.Next() {
		var (
			p    int64
			name string
		)
		if err := rows.Scan(&p, &name); err != nil {
			t.Fatal(err)
		}
		out[uint32(p)] = name
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCommitWritesFewTreePages appends group commits of checks and counts
// the WAL frames each B-tree took. The tree's nodes of one commit must be a
// page or two at the end of evidence_nodes (migration 0015), not a page per
// level of the tree, as when the table was keyed by (level, idx): about 13
// frames per commit of 32 records at this size; and checks take no entry in
// evidence_kind (migration 0016). The frames of every B-tree
// are logged: the attribution behind PERFORMANCE.md's figures.
func TestCommitWritesFewTreePages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(t.Context(), dir, WithCheckpoint(24*time.Hour, 1<<30))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stopCheckpoints(s) // nothing checkpoints: the WAL keeps every frame
	at := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	next := 0
	commit := func(n int) {
		recs := make([]evidence.Record, n)
		for i := range recs {
			id := fmt.Sprintf("chk-%07d", next)
			recs[i] = evidence.Record{ID: id, Kind: evidence.KindCheck, Partner: "client-1", At: at.Add(time.Duration(next) * time.Millisecond),
				Body: fmt.Appendf(nil, `{"check_id":%q,"partner":"client-1","subject":{"id":"91110108MB%08d","kind":"organization"},"action":"government_procurement","outcome":"clear","measures":[],"entries":[],"checked_at":"2026-12-04T09:00:00Z","context":{"region":"450100"}}`,
					id, next*7919%1000)}
			if err := recs[i].Seal(); err != nil {
				t.Fatal(err)
			}
			next++
		}
		if _, err := s.AppendBatch(t.Context(), recs); err != nil {
			t.Fatal(err)
		}
	}
	for range 33 {
		commit(32)
	}
	from, fromCommits := walFramePages(t, dir)
	const commits, perCommit = 64, 32
	for range commits {
		commit(perCommit)
	}
	pages, ended := walFramePages(t, dir)
	if ended-fromCommits != commits {
		t.Fatalf("%d commits in the WAL, want %d: it was checkpointed", ended-fromCommits, commits)
	}
	owner := btreeOfPage(t, s)
	frames := map[string]int{}
	for _, p := range pages[len(from):] {
		frames[owner[p]]++
	}
	for _, name := range slices.Sorted(maps.Keys(frames)) {
		t.Logf("%-28s %5d frames, %5.2f per commit, %.3f per record", name, frames[name],
			float64(frames[name])/commits, float64(frames[name])/(commits*perCommit))
	}
	t.Logf("all: %d frames, %.1f per commit", len(pages)-len(from), float64(len(pages)-len(from))/commits)
	if got := float64(frames["evidence_nodes"]) / commits; got > 3 {
		t.Errorf("evidence_nodes: %.2f frames per commit of %d records, want at most 3", got, perCommit)
	}
	// Since 0016 the index of records by kind leaves checks out.
	if n := frames["evidence_kind"]; n != 0 {
		t.Errorf("evidence_kind: %d frames for commits of checks only, want none", n)
	}
}

// TestMigrationKeepsTreeNodes builds a log and its tree on the schema of
// 0014 (nodes keyed by level and idx, written by the shared logic as it was),
// migrates to 0015 and checks that every root and proof reads the same
// through the positions, and that appending goes on from there.
func TestMigrationKeepsTreeNodes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	raw := openBefore(t, dir, "0015")
	old := dialect
	old.NodesByPosition = false
	old.NodesQuery = func(ids []sqlcommon.NodeKey) (string, []any) {
		q := `SELECT level, idx, hash FROM evidence_nodes WHERE (level, idx) IN (VALUES `
		var args []any
		for i, id := range ids {
			if i > 0 {
				q += ","
			}
			q += "(?,?)"
			args = append(args, id.Level, id.Index)
		}
		return q + ")", args
	}
	oldStore := sqlcommon.New(db{r: raw.w, w: raw.w, prepared: newPreparedStmts()}, old)
	// Sealed once: a record's salt is random.
	all := make([]evidence.Record, 64)
	for i := range all {
		all[i] = evidence.Record{ID: fmt.Sprintf("r-%03d", i), Kind: evidence.KindAdmin, Partner: "p",
			At: time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC), Body: []byte(`{}`)}
		if err := all[i].Seal(); err != nil {
			t.Fatal(err)
		}
	}
	batch := func(from, n int) []evidence.Record { return all[from : from+n] }
	const size = 45 // batches of 1, 6, 13 and 25 records
	next := 0
	for _, n := range []int{1, 6, 13, 25} {
		if _, err := oldStore.AppendBatch(ctx, batch(next, n)); err != nil {
			t.Fatal(err)
		}
		next += n
	}
	roots := map[uint64][evidence.HashSize]byte{}
	proofs := map[uint64][][evidence.HashSize]byte{}
	var err error
	for n := uint64(1); n <= size; n++ {
		if roots[n], err = evidence.RootAt(ctx, oldStore, n); err != nil {
			t.Fatal(err)
		}
		if proofs[n], err = evidence.InclusionProof(ctx, oldStore, n-1, size); err != nil {
			t.Fatal(err)
		}
	}
	raw.w.Close()

	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for n := uint64(1); n <= size; n++ {
		root, err := evidence.RootAt(ctx, s, n)
		if err != nil || root != roots[n] {
			t.Fatalf("root of %d records after 0015: %x, %v; want %x", n, root, err, roots[n])
		}
		p, err := evidence.InclusionProof(ctx, s, n-1, size)
		if err != nil || !slices.Equal(p, proofs[n]) {
			t.Fatalf("proof of record %d after 0015: %x, %v; want %x", n-1, p, err, proofs[n])
		}
	}
	if _, err := s.AppendBatch(ctx, batch(next, 19)); err != nil {
		t.Fatal(err)
	}
	// The same records appended to a new database give the same tree.
	fresh := openTemp(t)
	next = 0
	for _, n := range []int{1, 6, 13, 25, 19} {
		if _, err := fresh.AppendBatch(ctx, batch(next, n)); err != nil {
			t.Fatal(err)
		}
		next += n
	}
	for _, st := range []*Store{s, fresh} {
		if root, err := evidence.RootAt(ctx, st, size); err != nil || root != roots[size] {
			t.Fatalf("root of %d records: %x, %v; want %x", size, root, err, roots[size])
		}
	}
	h1, err1 := s.TreeHead(ctx)
	h2, err2 := fresh.TreeHead(ctx)
	if err1 != nil || err2 != nil || h1.Size != uint64(next) || h1.Root != h2.Root {
		t.Fatalf("heads after appending: migrated %d %x (%v), fresh %d %x (%v)", h1.Size, h1.Root, err1, h2.Size, h2.Root, err2)
	}
	var bad int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM evidence_nodes WHERE pos <> (((idx + 1) << level) - 1) * 64 + level`).
		Scan(&bad); err != nil || bad != 0 {
		t.Fatalf("%d nodes out of place (%v)", bad, err)
	}
}
