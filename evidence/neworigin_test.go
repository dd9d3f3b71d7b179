package evidence_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credgate/credgate/evidence"
)

// TestRestoredLogStartsUnderANewOrigin: a database restored behind a
// published checkpoint is started as a new log, with a new key and
// origin and WithPreviousOrigin naming the old one. The old log's stored
// checkpoints are neither served nor reported as forgeries; the new log
// signs the restored tree under its own origin (its first records are the
// old log's), receipts verify with the new key, the remembered file of
// the old origin does not apply and is replaced. Without the old key, or
// without WithPreviousOrigin, the old checkpoints are still reported.
func TestRestoredLogStartsUnderANewOrigin(t *testing.T) {
	t.Parallel()
	const newOrigin = "credgate.test/evidence-2"
	ctx := context.Background()
	old := newSigner(t, "credgate.test")
	file := filepath.Join(t.TempDir(), "evidence-checkpoint")
	m := newMemStore()
	l, err := startLog(m, old, file, quiet())
	if err != nil {
		t.Fatal(err)
	}
	kept := addChecks(t, m, "chk", 7)
	receipts(t, l, kept)
	backup := m.backup()
	receipts(t, l, addChecks(t, m, "lost", 3))

	skey, err := evidence.GenerateSignerKey("credgate.test-2")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := evidence.NewSigner(newOrigin, skey)
	if err != nil {
		t.Fatal(err)
	}
	newLog := func(r *memStore, opts ...evidence.LogOption) (*evidence.Log, *bytes.Buffer, error) {
		var logs bytes.Buffer
		nl, err := startLog(r, signer, file, slog.New(slog.NewTextHandler(&logs, nil)), opts...)
		return nl, &logs, err
	}
	// Without the old origin, or without the old key, the stored
	// checkpoints are reported as not this log's.
	for name, opts := range map[string][]evidence.LogOption{
		"no previous origin": {evidence.WithPreviousKeys(old.VerifierKey())},
		"no previous key":    {evidence.WithPreviousOrigin(testOrigin)},
	} {
		_, logs, err := newLog(backup.backup(), opts...)
		if err != nil || !strings.Contains(logs.String(), "not one this log signed") {
			t.Fatalf("%s: %v\n%s", name, err, logs.String())
		}
	}

	r := backup.backup()
	nl, logs, err := newLog(r, evidence.WithPreviousKeys(old.VerifierKey()), evidence.WithPreviousOrigin(testOrigin))
	if err != nil {
		t.Fatalf("start as a new log: %v", err)
	}
	cp, err := nl.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	current, _ := evidence.Verifiers(signer.VerifierKey())
	sc, err := evidence.OpenCheckpoint(cp.Note, current, newOrigin)
	if err != nil || sc.Size != 7 {
		t.Fatalf("the checkpoint served: %d %v\n%s", sc.Size, err, cp.Note)
	}
	// Records of the old log, and new ones, are proved into the new log.
	for _, rec := range append(kept[:2], addChecks(t, r, "new", 3)...) {
		rc, err := nl.Receipt(ctx, rec)
		if err != nil {
			t.Fatalf("receipt of %s: %v", rec.ID, err)
		}
		v, err := evidence.VerifyReceipt(rc, current)
		if err != nil || v.Checkpoint.Origin != newOrigin {
			t.Fatalf("receipt of %s: %+v %v", rec.ID, v.Checkpoint, err)
		}
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("the old log's checkpoints are reported:\n%s", logs.String())
	}
	if nl.Halted() != nil {
		t.Fatalf("halted: %v", nl.Halted())
	}
	if pub, _ := os.ReadFile(file); !bytes.HasPrefix(pub, []byte(newOrigin+"\n10\n")) {
		t.Fatalf("remembered:\n%s", pub)
	}
	// A restart: the latest stored checkpoint is the new log's own.
	if _, logs, err := newLog(r, evidence.WithPreviousKeys(old.VerifierKey()), evidence.WithPreviousOrigin(testOrigin)); err != nil ||
		strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("restart: %v\n%s", err, logs.String())
	}
}

// TestHaltedReportsTheRollback: Halted is nil while the log signs and the
// rollback once a database rolled back under it stopped its signing.
func TestHaltedReportsTheRollback(t *testing.T) {
	t.Parallel()
	s := newSigner(t, "credgate.test")
	m := newMemStore()
	l, err := startLog(m, s, filepath.Join(t.TempDir(), "cp"), quiet())
	if err != nil {
		t.Fatal(err)
	}
	receipts(t, l, addChecks(t, m, "chk", 3))
	if err := l.Halted(); err != nil {
		t.Fatalf("halted while signing: %v", err)
	}
	backup := m.backup()
	receipts(t, l, addChecks(t, m, "lost", 2))
	m.restore(backup)
	// Grown past the published checkpoint, as in
	// TestRollbackUnderRunningServerStopsSigning.
	fork := addChecks(t, m, "fork", 4)
	if _, err := l.Receipt(context.Background(), fork[0]); !errors.Is(err, evidence.ErrLogRolledBack) {
		t.Fatalf("receipt: %v", err)
	}
	if err := l.Halted(); !errors.Is(err, evidence.ErrLogRolledBack) {
		t.Fatalf("halted: %v", err)
	}
}
