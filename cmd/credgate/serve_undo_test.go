package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
)

// A start that fails after it opened its store — here on a spool that
// another replica holds, and on a damaged administrator's credential,
// after the evidence log signed — removes the database, the keys, the lock
// file and the directories it created, and leaves what was there before.
func TestFailedStartRemovesWhatItCreated(t *testing.T) {
	if testing.Short() {
		t.Skip("runs servers")
	}
	// heldSpool is a spool dir another replica has open.
	heldSpool := func(t *testing.T) string {
		dir := t.TempDir()
		sp, err := evidence.OpenSpool(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sp.Close() })
		return dir
	}
	const damaged = "{not json"
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, dataDir string) []string // the serve flags
		want    string                                      // in the error
		before  []string                                    // what the data dir holds before and after
	}{
		{"new data dir, spool in use", func(t *testing.T, _ string) []string {
			return []string{"--spool-dir", heldSpool(t)}
		}, "in use", nil},
		{"empty data dir, spool in use", func(t *testing.T, dataDir string) []string {
			if err := os.MkdirAll(dataDir, 0o700); err != nil {
				t.Fatal(err)
			}
			return []string{"--spool-dir", heldSpool(t)}
		}, "in use", []string{}},
		{"new spool dir beside it, damaged credential", func(t *testing.T, dataDir string) []string {
			writeFile(t, filepath.Join(dataDir, adminCredentialsFile), damaged)
			return []string{"--spool-dir", filepath.Join(filepath.Dir(dataDir), "spool", "replica")}
		}, adminCredentialsFile, []string{adminCredentialsFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dataDir := filepath.Join(parent, "srv", "data")
			args := tc.prepare(t, dataDir)
			err := serveRefused(t, dataDir, args...)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
			if tc.before == nil {
				if _, err := os.Stat(filepath.Join(parent, "srv")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the data dir's parent it created is still there: %v", err)
				}
			} else if got := dirNames(t, dataDir); !slices.Equal(got, tc.before) {
				t.Errorf("the data dir holds %v, want %v", got, tc.before)
			}
			if b, err := os.ReadFile(filepath.Join(dataDir, adminCredentialsFile)); tc.before != nil && slices.Contains(tc.before, adminCredentialsFile) && string(b) != damaged {
				t.Errorf("the credential that was there changed: %q, %v", b, err)
			}
			if _, err := os.Stat(filepath.Join(parent, "srv", "spool")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the spool dir it created is still there: %v", err)
			}
		})
	}
}

// On a database that stays (PostgreSQL), a start that fails after its
// evidence log signed with keys it generated keeps them: without them the
// next start would be refused the log it signed.
func TestFailedStartKeepsKeysThatSigned(t *testing.T) {
	if testing.Short() {
		t.Skip("runs servers on PostgreSQL")
	}
	pgURL := testenv.FreshDatabase(t, "credgate_undo")
	dataDir := t.TempDir()
	writeFile(t, filepath.Join(dataDir, adminCredentialsFile), "{not json")
	err := serveRefused(t, dataDir, "--postgres-url", pgURL, "--checkpoint-interval", "1h")
	if !strings.Contains(err.Error(), adminCredentialsFile) {
		t.Fatalf("refused for another reason: %v", err)
	}
	for _, f := range []string{tokenKeyFile, evidenceKeyFile, adminCredentialsFile} {
		if _, err := os.Stat(filepath.Join(dataDir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	// The next start, the credential repaired, signs on with the same key.
	if err := os.Remove(filepath.Join(dataDir, adminCredentialsFile)); err != nil {
		t.Fatal(err)
	}
	_, stop := serveUntilListening(t, dataDir, "--postgres-url", pgURL, "--checkpoint-interval", "1h")
	stop()
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}
