package sqlite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
)

// A backup taken while records are appended is the database as of one
// moment: its tree holds a whole number of batches between what was
// there before and after, it passes its integrity check, and a server
// opened on it (the restore: the copy put in place as credgate.db) reads
// its records and serves its tree. It is owner-only and never overwrites
// a file.
func TestBackupWhileWriting(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	next := 0
	appendChecks(t, s, 5, 100, &next)
	before := next
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			// appendChecks, without t.Fatal off the test's goroutine.
			recs := make([]evidence.Record, 100)
			for i := range recs {
				recs[i] = evidence.Record{ID: fmt.Sprintf("rec-%07d", next), Kind: evidence.KindAdmin, Partner: "p",
					At: time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC), Body: fmt.Appendf(nil, `{"n":%d}`, next)}
				if err := recs[i].Seal(); err != nil {
					t.Error(err)
					return
				}
				next++
			}
			if _, err := s.AppendBatch(t.Context(), recs); err != nil {
				t.Error(err)
				return
			}
		}
	})
	out := filepath.Join(t.TempDir(), "credgate-backup.db")
	in, err := Backup(t.Context(), dir, out)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if in.TreeSize < int64(before) || in.TreeSize > int64(next) || in.TreeSize%100 != 0 {
		t.Fatalf("backup holds %d records; %d were there before, %d after, in batches of 100", in.TreeSize, before, next)
	}
	if known, _ := SchemaVersions(t.Context(), dir); in.SchemaVersion != known.Known || in.Bytes == 0 {
		t.Fatalf("backup info %+v, schema %+v", in, known)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file mode: %v %v", fi.Mode(), err)
	}

	restored := t.TempDir()
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(restored, FileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Open(t.Context(), restored)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	head, err := r.TreeHead(t.Context())
	if err != nil || int64(head.Size) != in.TreeSize {
		t.Fatalf("the restored tree: %+v %v, want %d records", head, err, in.TreeSize)
	}
	if _, err := r.Record(t.Context(), "rec-0000000"); err != nil {
		t.Fatalf("a record of the restored copy: %v", err)
	}
	if _, err := r.Record(t.Context(), fmt.Sprintf("rec-%07d", in.TreeSize)); !errors.Is(err, evidence.ErrNotFound) {
		t.Fatalf("a record appended after the backup is in it: %v", err)
	}

	if _, err := Backup(t.Context(), dir, out); !errors.Is(err, ErrBackupExists) {
		t.Fatalf("a second backup onto the first: %v", err)
	}
	if b2, err := os.ReadFile(out); err != nil || len(b2) != len(b) {
		t.Fatalf("the refused backup changed the first: %d bytes, %v", len(b2), err)
	}
	nowhere := filepath.Join(t.TempDir(), "none.db")
	if _, err := Backup(t.Context(), t.TempDir(), nowhere); err == nil {
		t.Fatal("a backup of a dir without a database succeeded")
	}
	if _, err := os.Stat(nowhere); !os.IsNotExist(err) {
		t.Fatalf("a failed backup left %s: %v", nowhere, err)
	}
}
