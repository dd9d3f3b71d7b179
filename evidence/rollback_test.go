package evidence_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
)

// backup copies the store as a database backup would (sqlite3 .backup,
// pg_dump): what is committed now, nothing after.
func (m *memStore) backup() *memStore {
	m.mu.Lock()
	defer m.mu.Unlock()
	return &memStore{recs: slices.Clone(m.recs), nodes: maps.Clone(m.nodes), head: m.head,
		cps: slices.Clone(m.cps), keys: slices.Clone(m.keys)}
}

// restore puts a backup back under a running server.
func (m *memStore) restore(b *memStore) {
	c := b.backup()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs, m.nodes, m.head, m.cps, m.keys = c.recs, c.nodes, c.head, c.cps, c.keys
}

// addChecks appends records named prefix-1..n and returns them as stored.
func addChecks(t *testing.T, m *memStore, prefix string, n int) []evidence.Record {
	t.Helper()
	var recs []evidence.Record
	for i := 1; i <= n; i++ {
		recs = append(recs, sealed(t, fmt.Sprintf("%s-%d", prefix, i)))
	}
	if _, err := m.AppendBatch(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		recs[i], _ = m.Record(context.Background(), recs[i].ID)
	}
	return recs
}

// receipts fetches a receipt of each record, one at a time, as the
// reviewer's checks did: each signs a checkpoint covering its record.
func receipts(t *testing.T, l *evidence.Log, recs []evidence.Record) {
	t.Helper()
	for _, r := range recs {
		if _, err := l.Receipt(context.Background(), r); err != nil {
			t.Fatalf("receipt of %s: %v", r.ID, err)
		}
	}
}

func startLog(m *memStore, s *evidence.Signer, file string, lg *slog.Logger, opts ...evidence.LogOption) (*evidence.Log, error) {
	opts = append([]evidence.LogOption{evidence.WithPublishedFile(file), evidence.WithLogger(lg)}, opts...)
	l := evidence.NewLog(m, s, opts...)
	return l, l.Start(context.Background())
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestRestoredBackupIsNotSigned is the reviewer's fork: a backup at 7
// records, 3 more checks with receipts (checkpoints of 8, 9, 10), the
// backup restored under the same key and data dir. Before the fix the
// server signed the restored tree as soon as it grew, so two different
// records were each "record 8" under the real key; now it refuses to
// start, whether the restored database has grown past the published
// checkpoint or not, and signs nothing.
func TestRestoredBackupIsNotSigned(t *testing.T) {
	t.Parallel()
	s := newSigner(t, "credgate.test")
	file := filepath.Join(t.TempDir(), "evidence-checkpoint")
	m := newMemStore()
	l, err := startLog(m, s, file, quiet())
	if err != nil {
		t.Fatal(err)
	}
	receipts(t, l, addChecks(t, m, "chk", 7))
	backup := m.backup()
	receipts(t, l, addChecks(t, m, "lost", 3))
	if cp, err := l.Checkpoint(context.Background()); err != nil || cp.Size != 10 {
		t.Fatalf("checkpoint before the restore: %d %v", cp.Size, err)
	}
	published, _ := os.ReadFile(file)

	for _, grown := range []int{0, 2, 3, 4} {
		t.Run(fmt.Sprintf("restored+%d", grown), func(t *testing.T) {
			r := backup.backup()
			if grown > 0 {
				addChecks(t, r, "fork", grown)
			}
			before := r.checkpointCount()
			_, err := startLog(r, s, file, quiet())
			if !errors.Is(err, evidence.ErrLogRolledBack) {
				t.Fatalf("start on the restored database: %v", err)
			}
			var rb *evidence.RollbackError
			if !errors.As(err, &rb) || rb.Published.Size != 10 || rb.Size != uint64(7+grown) {
				t.Fatalf("rollback error: %+v", rb)
			}
			t.Log(err)
			if r.checkpointCount() != before {
				t.Fatalf("a checkpoint was signed on the restored database: %d, was %d", r.checkpointCount(), before)
			}
			if now, _ := os.ReadFile(file); !bytes.Equal(now, published) {
				t.Fatalf("the published checkpoint was overwritten:\n%s", now)
			}
		})
	}

	// A restart on the database as it was (no rollback) is fine, and goes on.
	l2, err := startLog(m, s, file, quiet())
	if err != nil {
		t.Fatalf("restart without a rollback: %v", err)
	}
	receipts(t, l2, addChecks(t, m, "more", 2))
	if cp, _ := l2.Checkpoint(context.Background()); cp.Size != 12 {
		t.Fatalf("checkpoint after the restart: %d", cp.Size)
	}
	if got, _ := os.ReadFile(file); !bytes.Contains(got, []byte("\n12\n")) {
		t.Fatalf("remembered after the restart:\n%s", got)
	}
}

// TestRollbackUnderRunningServerStopsSigning: the database is rolled back
// under a running log; receipts of the records added since fail (as
// corrupt evidence, not with a second history) and nothing more is
// signed, even once the tree has grown past the published size.
func TestRollbackUnderRunningServerStopsSigning(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	s := newSigner(t, "credgate.test")
	file := filepath.Join(t.TempDir(), "evidence-checkpoint")
	m := newMemStore()
	l, err := startLog(m, s, file, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	receipts(t, l, addChecks(t, m, "chk", 7))
	backup := m.backup()
	receipts(t, l, addChecks(t, m, "lost", 3))
	m.restore(backup)
	before := m.checkpointCount()
	fork := addChecks(t, m, "fork", 4)
	for _, r := range fork {
		_, err := l.Receipt(context.Background(), r)
		if !errors.Is(err, evidence.ErrLogRolledBack) || !errors.Is(err, evidence.ErrTreeCorrupt) {
			t.Fatalf("receipt of %s on the rolled-back database: %v", r.ID, err)
		}
	}
	if _, err := l.Checkpoint(context.Background()); !errors.Is(err, evidence.ErrLogRolledBack) {
		t.Fatalf("checkpoint on the rolled-back database: %v", err)
	}
	if m.checkpointCount() != before {
		t.Fatalf("signed on the rolled-back database: %d checkpoints, were %d", m.checkpointCount(), before)
	}
	if n := strings.Count(logs.String(), "refusing to sign"); n != 1 {
		t.Fatalf("the refusal is logged %d times:\n%s", n, logs.String())
	}
}

// TestPublishedFileFollowsTheLog: a replica with no file (a fresh one, or
// the first start after an upgrade) remembers the latest stored
// checkpoint at start; one signed by another replica on the same database
// is remembered as the log grows; a file of another origin (the log
// restarted as a new log) does not apply; a damaged one stops the start.
func TestPublishedFileFollowsTheLog(t *testing.T) {
	t.Parallel()
	s := newSigner(t, "credgate.test")
	dir := t.TempDir()
	fileA, fileB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	m := newMemStore()
	a, err := startLog(m, s, fileA, quiet())
	if err != nil {
		t.Fatal(err)
	}
	receipts(t, a, addChecks(t, m, "chk", 5))
	b := evidence.NewLog(m, s, evidence.WithPublishedFile(fileB), evidence.WithLogger(quiet()), evidence.WithCheckpointInterval(5*time.Millisecond))
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(fileB); !bytes.Contains(got, []byte("\n5\n")) {
		t.Fatalf("a fresh replica remembers:\n%s", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx) }()
	receipts(t, a, addChecks(t, m, "more", 3))
	deadline := time.Now().Add(5 * time.Second)
	for got, _ := os.ReadFile(fileB); !bytes.Contains(got, []byte("\n8\n")); got, _ = os.ReadFile(fileB) {
		if time.Now().After(deadline) {
			t.Fatalf("replica b does not remember a's checkpoint of 8:\n%s", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done

	// The log restarted as a new log, under a new origin and key, on a
	// backup taken at 5: the old origin's file does not apply, and is
	// replaced by the new log's checkpoint.
	restored := m.backup()
	restored.truncate(5)
	skey, err := evidence.GenerateSignerKey("credgate.test")
	if err != nil {
		t.Fatal(err)
	}
	s2, err := evidence.NewSigner(testOrigin+"/2", skey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := startLog(restored, s, fileA, quiet()); !errors.Is(err, evidence.ErrLogRolledBack) {
		t.Fatalf("the same origin on the restored database: %v", err)
	}
	n, err := startLog(restored, s2, fileA, quiet())
	if err != nil {
		t.Fatalf("a new origin on the restored database: %v", err)
	}
	receipts(t, n, addChecks(t, restored, "new", 2))
	if got, _ := os.ReadFile(fileA); !bytes.HasPrefix(got, []byte(testOrigin+"/2\n7\n")) {
		t.Fatalf("the new log remembers:\n%s", got)
	}

	if err := os.WriteFile(fileB, []byte("not a note"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := startLog(m, s, fileB, quiet()); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("a damaged file: %v", err)
	}
}

// truncate keeps the first n records and what they commit to, as a
// backup taken at n records holds.
func (m *memStore) truncate(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = m.recs[:n]
	tree, _ := evidence.TreeFrom(evidence.Head{Root: evidence.EmptyRoot()})
	nodes := map[evidence.NodeID][evidence.HashSize]byte{}
	for _, r := range m.recs {
		tree.Append(evidence.LeafHash(r), func(id evidence.NodeID, h [evidence.HashSize]byte) { nodes[id] = h })
	}
	m.nodes, m.head = nodes, tree.Head()
	m.cps = slices.DeleteFunc(m.cps, func(c evidence.StoredCheckpoint) bool { return c.Size > uint64(n) })
}

// TestRotatedKeyIsNoForgery: after a rotation the latest stored checkpoint
// is signed by the old key, given in WithPreviousKeys: it is the log's
// own, served without an ERROR. A key the log was not given still is.
func TestRotatedKeyIsNoForgery(t *testing.T) {
	t.Parallel()
	old := newSigner(t, "credgate.test")
	m := newMemStore()
	l, err := startLog(m, old, filepath.Join(t.TempDir(), "cp"), quiet())
	if err != nil {
		t.Fatal(err)
	}
	receipts(t, l, addChecks(t, m, "chk", 4))

	for _, given := range []bool{true, false} {
		var logs bytes.Buffer
		lg := slog.New(slog.NewTextHandler(&logs, nil))
		opts := []evidence.LogOption{evidence.WithLogger(lg)}
		if given {
			opts = append(opts, evidence.WithPreviousKeys(old.VerifierKey()))
		}
		nl := evidence.NewLog(m, newSigner(t, "credgate.test"), opts...)
		if err := nl.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		cp, err := nl.Checkpoint(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		forgery := strings.Contains(logs.String(), "level=ERROR")
		if given && (forgery || !bytes.Equal(cp.Note, m.cps[len(m.cps)-1].Note)) {
			t.Fatalf("rotation with the previous key given: serves %d, logs:\n%s", cp.Size, logs.String())
		}
		if !given && !forgery {
			t.Fatalf("a checkpoint signed by an unknown key is not reported:\n%s", logs.String())
		}
	}
	if _, err := startLog(m, old, filepath.Join(t.TempDir(), "cp"), quiet(), evidence.WithPreviousKeys("not a key")); !errors.Is(err, evidence.ErrInvalidKey) {
		t.Fatalf("a malformed previous key: %v", err)
	}
}
