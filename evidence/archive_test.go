package evidence_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
)

// archiveMem is the memory store with the read an archive needs.
type archiveMem struct{ *memStore }

func (m archiveMem) CheckpointsFrom(_ context.Context, from, through uint64, limit int) ([]evidence.StoredCheckpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []evidence.StoredCheckpoint{}
	for _, c := range m.cps {
		if c.Size >= from && c.Size <= through && len(out) < limit {
			out = append(out, c)
		}
	}
	return out, nil
}

// RecordsBetween reads the records by position, not by a scan of them all
// as the memory store does: an archive reads every bundle.
func (m archiveMem) RecordsBetween(_ context.Context, from, to uint64) ([]evidence.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	to = min(to, uint64(len(m.recs)))
	if from >= to {
		return nil, nil
	}
	return slices.Clone(m.recs[from:to]), nil
}

// memArchive keeps an archive's files in memory, in the order written.
type memArchive struct {
	files map[string][]byte
	order []string
}

func (a *memArchive) PutArchiveFile(name string, data []byte) error {
	if _, dup := a.files[name]; dup {
		return fmt.Errorf("%s written twice", name)
	}
	a.files[name] = append([]byte(nil), data...)
	a.order = append(a.order, name)
	return nil
}

func (a *memArchive) ReadArchiveFile(name string, limit int64) ([]byte, error) {
	b, ok := a.files[name]
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s too large", name)
	}
	return b, nil
}

// sequential reads the files strictly in the order written, as a tar
// stream is read: any other name is not there.
type sequential struct {
	a    *memArchive
	next int
}

func (s *sequential) ReadArchiveFile(name string, limit int64) ([]byte, error) {
	if s.next < len(s.a.order) && s.a.order[s.next] == name {
		s.next++
		return s.a.ReadArchiveFile(name, limit)
	}
	return nil, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
}

// archivedLog builds a log of n records past a full level-1 tile, signed
// by two keys (a rotation after the first 300 records), with checkpoints
// scattered over it and record 7's body erased, and archives it.
func archivedLog(t *testing.T, n int) (*memArchive, []string, evidence.StoredCheckpoint) {
	t.Helper()
	ctx := context.Background()
	m := archiveMem{newMemStore()}
	old := testenv.Signer(t, "archive.test/evidence")
	lg := evidence.NewLog(m, old)
	if err := lg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	appendN := func(k int) {
		recs := make([]evidence.Record, k)
		for i := range recs {
			at = at.Add(time.Millisecond)
			recs[i] = evidence.Record{ID: fmt.Sprintf("r%06d", len(m.recs)+i), Kind: evidence.KindCheck, Partner: "p1", At: at,
				Body: fmt.Appendf(nil, `{"n":%d}`, len(m.recs)+i)}
			if i%5 == 0 {
				recs[i].Kind = evidence.KindAdmin
			}
			if err := recs[i].Seal(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := m.AppendBatch(ctx, recs); err != nil {
			t.Fatal(err)
		}
	}
	sign := func(l *evidence.Log) {
		if _, err := l.Covering(ctx, uint64(len(m.recs))); err != nil {
			t.Fatal(err)
		}
	}
	appendN(1)
	sign(lg)
	appendN(299)
	sign(lg)
	rotated := testenv.Signer(t, "archive.test/evidence")
	lg = evidence.NewLog(m, rotated, evidence.WithPreviousKeys(old.VerifierKey()))
	if err := lg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	appendN(256)
	sign(lg)
	appendN(n - len(m.recs))
	sign(lg)
	m.recs[7].Body, m.recs[7].Salt = nil, nil
	end, err := m.LatestCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a := &memArchive{files: map[string][]byte{}}
	man, err := evidence.WriteArchive(ctx, m, end, a, evidence.ArchiveOptions{Bodies: true})
	if err != nil {
		t.Fatal(err)
	}
	if man.Size != uint64(n) || man.Keys != 2 || man.Erased != 1 || man.Checkpoints != uint64(m.checkpointCount()) {
		t.Fatalf("manifest %+v", man)
	}
	return a, []string{old.VerifierKey(), rotated.VerifierKey()}, end
}

// TestArchiveRoundTrip: an archive of a log past a full level-1 tile,
// with a key rotation and an erased body, verifies with both keys pinned,
// read at random or in the order written (a tar stream), and holds the
// tlog-tiles the gateway serves.
func TestArchiveRoundTrip(t *testing.T) {
	t.Parallel()
	const n = evidence.TileWidth*evidence.TileWidth + 300
	a, keys, end := archivedLog(t, n)
	for _, name := range []string{"checkpoint", "keys", "credgate-archive.json", "tile/1/000", "tile/1/001.p/1", "tile/0/257.p/44",
		"tile/entries/257.p/44", "records/257.p/44", "tile/2/000.p/1", "checkpoints/000", "checkpoints/001", "checkpoints/300"} {
		if _, ok := a.files[name]; !ok {
			t.Errorf("no %s in the archive", name)
		}
	}
	for name := range a.files {
		if !evidence.ArchiveNameWithin(name, n) {
			t.Errorf("%s is outside the layout", name)
		}
	}
	vs, err := evidence.Verifiers(keys...)
	if err != nil {
		t.Fatal(err)
	}
	seq := &sequential{a: a}
	for _, files := range []evidence.ArchiveFiles{a, seq} {
		rep, err := evidence.VerifyArchive(t.Context(), files, evidence.ArchiveVerifyOptions{Verifiers: vs, Roots: []uint64{300}, Entries: []uint64{7}})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Pinned || rep.Checkpoint.Size != n || rep.Checkpoint.Root != end.Root || rep.Erased != 1 || rep.ErasedAt[0] != 7 {
			t.Fatalf("report %+v", rep)
		}
		if rep.Roots[300] == ([evidence.HashSize]byte{}) || !strings.Contains(string(rep.Entries[7]), "id r000007") {
			t.Fatalf("watched %x %q", rep.Roots[300], rep.Entries[7])
		}
	}
	if seq.next != len(a.order) {
		t.Fatalf("a sequential read stopped at file %d of %d", seq.next, len(a.order))
	}
	// A full level-1 tile changed.
	b := &memArchive{files: maps.Clone(a.files), order: a.order}
	b.files["tile/1/000"] = append([]byte(nil), a.files["tile/1/000"]...)
	b.files["tile/1/000"][255*evidence.HashSize] ^= 1
	if _, err := evidence.VerifyArchive(t.Context(), b, evidence.ArchiveVerifyOptions{Verifiers: vs}); !errors.Is(err, evidence.ErrArchive) ||
		!strings.Contains(err.Error(), "tile/1/000: hash 255 (tree node 8/255)") {
		t.Fatalf("level-1 tile changed: %v", err)
	}
	// Only the new key pinned: the checkpoints before the rotation fail.
	newOnly, _ := evidence.Verifiers(keys[1])
	_, err = evidence.VerifyArchive(t.Context(), a, evidence.ArchiveVerifyOptions{Verifiers: newOnly})
	if !errors.Is(err, evidence.ErrArchive) || !strings.Contains(err.Error(), "checkpoints/000: ") || !strings.Contains(err.Error(), "not trusted here") {
		t.Fatalf("new key only: %v", err)
	}
}

// TestArchiveTampered: one byte changed (or a file removed or added)
// anywhere fails verification, naming the file.
func TestArchiveTampered(t *testing.T) {
	t.Parallel()
	a, keys, _ := archivedLog(t, 3*evidence.TileWidth+44)
	vs, _ := evidence.Verifiers(keys...)
	flip := func(name string, off int) func(map[string][]byte) {
		return func(f map[string][]byte) {
			b := append([]byte(nil), f[name]...)
			if off < 0 {
				off += len(b)
			}
			b[off] ^= 0x01
			f[name] = b
		}
	}
	for _, tc := range []struct {
		what   string
		change func(map[string][]byte)
		want   string
	}{
		{"an entry", flip("tile/entries/001", 40), "tile/entries/001"},
		{"a level-0 tile", flip("tile/0/002", 33), "tile/0/002: hash 1 "},
		{"a level-1 tile", flip("tile/1/000.p/3", 2*32), "tile/1/000.p/3: hash 2 (tree node 8/2)"},
		{"a partial tile", flip("tile/0/003.p/44", 5), "tile/0/003.p/44: hash 0 "},
		{"a checkpoint's root", flip("checkpoints/300", 30), "checkpoints/300: checkpoint signature does not verify"},
		{"the final checkpoint", flip("checkpoint", 25), "checkpoint: "},
		{"a body", flip("records/002", 200), "records/002: "},
		{"the manifest", func(f map[string][]byte) {
			f["credgate-archive.json"] = []byte(strings.Replace(string(f["credgate-archive.json"]), `"erased": 1`, `"erased": 0`, 1))
		}, "credgate-archive.json: says bodies true, 0 erased"},
		{"a checkpoint removed", func(f map[string][]byte) { delete(f, "checkpoints/812") }, "checkpoints/812: missing"},
		{"a checkpoint refiled", func(f map[string][]byte) {
			f["checkpoints/299"] = f["checkpoints/300"]
		}, "checkpoints/299: is a checkpoint of 300 records, filed as one of 299"},
		{"a tile removed", func(f map[string][]byte) { delete(f, "tile/0/001") }, "tile/0/001: missing"},
		{"records removed", func(f map[string][]byte) { delete(f, "records/001") }, "records/001: missing"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			b := &memArchive{files: maps.Clone(a.files), order: a.order}
			tc.change(b.files)
			_, err := evidence.VerifyArchive(t.Context(), b, evidence.ArchiveVerifyOptions{Verifiers: vs})
			if !errors.Is(err, evidence.ErrArchive) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

// TestArchiveRefusesCorruptLog: a stored node that its leaves do not give
// is found while writing, and the export fails.
func TestArchiveRefusesCorruptLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := archiveMem{newMemStore()}
	lg := evidence.NewLog(m, testenv.Signer(t, "archive.test/evidence"))
	if err := lg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	recs := make([]evidence.Record, 20)
	for i := range recs {
		recs[i] = evidence.Record{ID: fmt.Sprint("r", i), Kind: evidence.KindCheck, At: time.Now(), Body: []byte("{}")}
		_ = recs[i].Seal()
	}
	if _, err := m.AppendBatch(ctx, recs); err != nil {
		t.Fatal(err)
	}
	end, err := lg.Covering(ctx, 20)
	if err != nil {
		t.Fatal(err)
	}
	m.nodes[evidence.NodeID{Level: 0, Index: 3}] = [evidence.HashSize]byte{1}
	_, err = evidence.WriteArchive(ctx, m, end, &memArchive{files: map[string][]byte{}}, evidence.ArchiveOptions{Bodies: true})
	if !errors.Is(err, evidence.ErrArchive) || !strings.Contains(err.Error(), "tile/0/000.p/20: hash 3 ") {
		t.Fatalf("corrupt node: %v", err)
	}
}
