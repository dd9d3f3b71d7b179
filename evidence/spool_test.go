package evidence_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
)

func spoolRec(t testing.TB, id string) evidence.Record {
	t.Helper()
	r := evidence.Record{ID: id, Kind: evidence.KindCheck, Partner: "p1", At: time.Now().UTC(), Body: []byte(`{"check_id":"` + id + `"}`)}
	if err := r.Seal(); err != nil {
		t.Fatal(err)
	}
	return r
}

func openSpool(t testing.TB, dir string, opts ...evidence.SpoolOption) *evidence.Spool {
	t.Helper()
	s, err := evidence.OpenSpool(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func spoolN(t testing.TB, s *evidence.Spool, from, n int) []evidence.SpoolEntry {
	t.Helper()
	var out []evidence.SpoolEntry
	for i := range n {
		es, err := s.Append(t.Context(), spoolRec(t, fmt.Sprintf("r%d", from+i)))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, es...)
	}
	return out
}

// TestSpoolReopen: entries survive a reopen with their positions, in
// order, and positions go on after integration and compaction: a position
// once promised is never promised again.
func TestSpoolReopen(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir)
	replica := s.Replica()
	es := spoolN(t, s, 0, 3)
	for i, e := range es {
		if e.Position != uint64(i+1) || e.Replica != replica {
			t.Fatalf("entry %d: position %d replica %q", i, e.Position, e.Replica)
		}
	}
	s.Close()

	s = openSpool(t, dir)
	if s.Replica() != replica {
		t.Fatalf("replica id changed: %q then %q", replica, s.Replica())
	}
	got, err := s.Pending(10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d pending after reopen, want 3", len(got))
	}
	for i := range got {
		if got[i].Position != es[i].Position || got[i].Record.ID != es[i].Record.ID || got[i].Record.Hash != es[i].Record.Hash ||
			!bytes.Equal(got[i].Record.Salt, es[i].Record.Salt) || !got[i].Record.At.Equal(es[i].Record.At) {
			t.Fatalf("entry %d read back as %+v, written %+v", i, got[i], es[i])
		}
	}
	if err := s.MarkIntegrated(2); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Pending(10); len(got) != 1 || got[0].Position != 3 {
		t.Fatalf("after marking 2: %+v", got)
	}
	if err := s.MarkIntegrated(3); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Pending != 0 || st.Bytes != 0 {
		t.Fatalf("integrated spool not compacted: %+v", st)
	}
	s.Close()

	s = openSpool(t, dir)
	next := spoolN(t, s, 3, 1)
	if next[0].Position != 4 {
		t.Fatalf("position after compaction: %d, want 4", next[0].Position)
	}
}

// TestSpoolTornTail: a crash mid-write leaves part of an entry (or zeros)
// at the end; open truncates it and keeps every entry before it.
func TestSpoolTornTail(t *testing.T) {
	for name, tear := range map[string]func(whole []byte, lastStart int) []byte{
		"header cut":  func(b []byte, last int) []byte { return b[:last+5] },
		"payload cut": func(b []byte, last int) []byte { return b[:len(b)-3] },
		"zeroed payload": func(b []byte, last int) []byte {
			out := bytes.Clone(b)
			clear(out[last+12:])
			return out
		},
		"zeros after": func(b []byte, _ int) []byte { return append(bytes.Clone(b), make([]byte, 4096)...) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := openSpool(t, dir)
			spoolN(t, s, 0, 2)
			before := s.Stats().Bytes
			spoolN(t, s, 2, 1)
			s.Close()
			path := filepath.Join(dir, "spool.log")
			whole, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tear(whole, int(before)), 0o600); err != nil {
				t.Fatal(err)
			}
			s = openSpool(t, dir)
			got, err := s.Pending(10)
			if err != nil {
				t.Fatal(err)
			}
			wantN := 2
			if name == "zeros after" {
				wantN = 3
			}
			if len(got) != wantN {
				t.Fatalf("%d entries after the tear, want %d", len(got), wantN)
			}
			// The next append takes the torn entry's place.
			e := spoolN(t, s, 9, 1)[0]
			if e.Position != uint64(wantN+1) {
				t.Fatalf("position after the tear: %d", e.Position)
			}
			if got, _ := s.Pending(10); len(got) != wantN+1 {
				t.Fatalf("%d entries after appending past the tear", len(got))
			}
		})
	}
}

// TestSpoolCorruptMiddle: a damaged entry with good ones after it is
// reported, never skipped or truncated away.
func TestSpoolCorruptMiddle(t *testing.T) {
	for name, at := range map[string]int{"payload": 30, "length": 1, "header checksum": 6} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := openSpool(t, dir)
			spoolN(t, s, 0, 3)
			s.Close()
			path := filepath.Join(dir, "spool.log")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[at] ^= 0x40
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = evidence.OpenSpool(dir)
			if !errors.Is(err, evidence.ErrSpoolCorrupt) {
				t.Fatalf("open of a corrupt spool: %v", err)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, b) {
				t.Fatal("a corrupt spool was modified")
			}
		})
	}
}

// TestSpoolFull: past its limit the spool refuses, and what it holds is
// unchanged.
func TestSpoolFull(t *testing.T) {
	s := openSpool(t, t.TempDir(), evidence.WithSpoolMaxBytes(600))
	spoolN(t, s, 0, 2)
	var err error
	for i := 2; i < 10 && err == nil; i++ {
		_, err = s.Append(t.Context(), spoolRec(t, fmt.Sprintf("r%d", i)))
	}
	if !errors.Is(err, evidence.ErrSpoolFull) {
		t.Fatalf("append past the limit: %v", err)
	}
	if st := s.Stats(); st.Bytes > 600 {
		t.Fatalf("spool holds %d bytes past its limit", st.Bytes)
	}
}

// TestSpoolLocked: one process per spool directory.
func TestSpoolLocked(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, dir)
	if _, err := evidence.OpenSpool(dir); !errors.Is(err, evidence.ErrSpoolLocked) {
		t.Fatalf("second open: %v", err)
	}
	s.Close()
	openSpool(t, dir)
}

// TestSpoolConcurrent: concurrent appends get distinct consecutive
// positions and all read back.
func TestSpoolConcurrent(t *testing.T) {
	s := openSpool(t, t.TempDir())
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				if _, err := s.Append(t.Context(), spoolRec(t, fmt.Sprintf("g%d-%d", g, i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	got, err := s.Pending(1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 160 {
		t.Fatalf("%d entries", len(got))
	}
	for i, e := range got {
		if e.Position != uint64(i+1) {
			t.Fatalf("entry %d at position %d", i, e.Position)
		}
	}
}

// TestPromise: a promise verifies under the log's key, says what was
// promised, and every altered part is caught.
func TestPromise(t *testing.T) {
	signer := newSigner(t, "credgate.test")
	vs := verifiersOf(t, signer.VerifierKey())
	s := openSpool(t, t.TempDir())
	e := spoolN(t, s, 0, 1)[0]
	p, err := signer.Promise(e, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(p)
	parsed, err := evidence.ParsePromise(raw)
	if err != nil {
		t.Fatal(err)
	}
	v, err := evidence.VerifyPromise(parsed, vs)
	if err != nil {
		t.Fatal(err)
	}
	if v.Position != 1 || v.Replica != s.Replica() || v.Record.ID != "r0" || v.Origin != testOrigin {
		t.Fatalf("verified promise: %+v", v)
	}
	// A promise is never a checkpoint.
	if _, err := evidence.OpenCheckpoint([]byte(p.Note), vs, ""); err == nil {
		t.Fatal("a promise opened as a checkpoint")
	}
	for name, tc := range map[string]struct {
		alter func(p *evidence.Promise)
		want  error
	}{
		"body":     {func(p *evidence.Promise) { p.Record.Body = "e30=" }, evidence.ErrRecordHash},
		"position": {func(p *evidence.Promise) { p.Position++ }, evidence.ErrPromise},
		"replica":  {func(p *evidence.Promise) { p.Replica = "other" }, evidence.ErrPromise},
		"note":     {func(p *evidence.Promise) { p.Note = p.Note[:len(p.Note)-10] + "AAAAAAAAA\n" }, evidence.ErrPromise},
	} {
		q := parsed
		tc.alter(&q)
		if _, err := evidence.VerifyPromise(q, vs); !errors.Is(err, tc.want) {
			t.Errorf("%s altered: %v, want %v", name, err, tc.want)
		}
	}
	other := verifiersOf(t, newSigner(t, "other").VerifierKey())
	if _, err := evidence.VerifyPromise(parsed, other); !errors.Is(err, evidence.ErrPromise) {
		t.Errorf("under another key: %v", err)
	}
}
