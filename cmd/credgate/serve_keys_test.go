package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
)

// serveRefused runs serve, which must refuse to start: it returns serve's
// error, and fails the test (stopping serve) if serve listens instead.
func serveRefused(t *testing.T, dataDir string, args ...string) error {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out, logs := &testenv.SyncBuffer{}, &testenv.SyncBuffer{}
	args = append([]string{"--addr", "127.0.0.1:0", "--data-dir", dataDir, "--evidence-origin", testOrigin, "--shutdown-timeout", "1s"}, args...)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, args, out, logs) }()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case err := <-done:
			if err == nil {
				t.Fatalf("serve ended without an error:\n%s", logs.String())
			}
			return err
		case <-deadline:
			t.Fatalf("serve neither refused nor listened:\n%s", logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if strings.Contains(out.String(), "listening") {
			cancel()
			<-done
			t.Fatalf("serve started:\n%s", logs.String())
		}
	}
}

// dirNames lists a directory's entries by name.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// dataDirVerifier is the verifier key of the evidence key serve generated
// into dataDir.
func dataDirVerifier(t *testing.T, dataDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, evidenceKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	s, err := evidence.NewSigner(testOrigin, string(b))
	if err != nil {
		t.Fatal(err)
	}
	return s.VerifierKey()
}

// A replica whose key did not sign the shared log refuses to start, names
// the key that did and what to copy where, and writes nothing: no key in
// its data dir, no row in the database. With the shared key, or a new key
// and the old one given as previous (a rotation), it starts.
func TestReplicaWithAnotherKeyRefusesToStart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs servers on PostgreSQL")
	}
	pgURL := testenv.FreshDatabase(t, "credgate_keys")
	// No periodic checkpoints: the first replica's rows stay as they are
	// while the others try to start.
	first := startInProcess(t, "--postgres-url", pgURL, "--checkpoint-interval", "1h")
	vkey := dataDirVerifier(t, first.dataDir)
	name := signerName(vkey) // credgate.test/evidence+<hash>

	conn, err := pgx.Connect(t.Context(), pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	counts := func() string {
		t.Helper()
		var out []string
		for _, table := range []string{"evidence", "evidence_checkpoints", "evidence_keys", "evidence_nodes", "partners"} {
			var n int
			if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s=%d", table, n))
		}
		return strings.Join(out, " ")
	}
	before := counts()
	if !strings.Contains(before, "evidence_checkpoints=1") {
		t.Fatalf("the first replica signed no checkpoint: %s", before)
	}

	otherKey, err := evidence.GenerateSignerKey("credgate.test/evidence")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := evidence.NewSigner(testOrigin, otherKey)
	for _, tc := range []struct {
		name string
		args []string
		has  string
	}{
		{"another key", []string{"--evidence-key", otherKey}, "it has key " + signerName(other.VerifierKey())},
		// The case: without the shared key a replica used to
		// generate its own and sign with it.
		{"no key", nil, "it has no evidence key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := t.TempDir()
			err := serveRefused(t, dataDir, append([]string{"--postgres-url", pgURL}, tc.args...)...)
			t.Logf("refused: %v", err)
			for _, want := range []string{
				"the evidence log's checkpoints are signed by key " + name + ", which this replica does not have",
				tc.has, "copy " + evidenceKeyFile + " from the first replica's data dir",
				"--evidence-key / CREDGATE_EVIDENCE_KEY", "--evidence-previous-keys",
			} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
			if !errors.Is(err, evidence.ErrLogKey) {
				t.Errorf("not ErrLogKey: %v", err)
			}
			if names := dirNames(t, dataDir); len(names) != 0 {
				t.Errorf("the refused replica wrote %v into its data dir", names)
			}
			if after := counts(); after != before {
				t.Errorf("the refused replica wrote to the database: %s → %s", before, after)
			}
		})
	}

	// Another origin is refused too, naming the log's.
	err = serveRefused(t, t.TempDir(), "--postgres-url", pgURL, "--evidence-key", filepath.Join(first.dataDir, evidenceKeyFile), "--evidence-origin", "credgate.other/evidence")
	if !strings.Contains(err.Error(), `"credgate.other/evidence"`) || !strings.Contains(err.Error(), fmt.Sprintf("to %q", testOrigin)) {
		t.Errorf("other origin: %v", err)
	}

	// The shared key: a second replica starts beside the first.
	// (Replicas share the administrator's credential too: only the keys
	// are looked at here, so no one logs in.)
	secondDir := t.TempDir()
	_, stop := serveUntilListening(t, secondDir, "--postgres-url", pgURL, "--checkpoint-interval", "1h", "--evidence-key", filepath.Join(first.dataDir, evidenceKeyFile))
	t.Cleanup(stop)
	if _, err := os.Stat(filepath.Join(secondDir, evidenceKeyFile)); !os.IsNotExist(err) {
		t.Errorf("a replica given the key generated one too: %v", err)
	}

	// A rotation: the new key, with the old verifier key as previous.
	rotated, stop := serveUntilListening(t, t.TempDir(), "--postgres-url", pgURL, "--checkpoint-interval", "1h", "--evidence-key", otherKey, "--evidence-previous-keys", vkey)
	t.Cleanup(stop)
	var doc struct {
		Keys []struct {
			Key     string `json:"key"`
			Current bool   `json:"current"`
		} `json:"keys"`
	}
	if code := getJSON(t, rotated, "/v1/evidence/keys", "", &doc); code != 200 {
		t.Fatalf("keys: %d", code)
	}
	if !slices.ContainsFunc(doc.Keys, func(k struct {
		Key     string `json:"key"`
		Current bool   `json:"current"`
	}) bool {
		return k.Key == other.VerifierKey() && k.Current
	}) {
		t.Errorf("the rotated replica does not sign with its new key: %+v", doc.Keys)
	}
}

// Two servers on one SQLite data dir: the second refuses, naming the
// holder's pid, and changes nothing there; once the first has stopped, it
// starts again on the same dir. A data dir whose evidence key was lost is
// refused rather than given a new key.
func TestSecondServeOnSQLiteDataDirRefuses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs servers")
	}
	dataDir := t.TempDir()
	_, stop := serveUntilListening(t, dataDir)
	names := dirNames(t, dataDir)
	key, err := os.ReadFile(filepath.Join(dataDir, evidenceKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	err = serveRefused(t, dataDir)
	for _, want := range []string{filepath.Join(dataDir, sqlite.LockFileName), fmt.Sprintf("locked by process %d", os.Getpid()), "another --data-dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if !errors.Is(err, sqlite.ErrDataDirLocked) {
		t.Errorf("not ErrDataDirLocked: %v", err)
	}
	if after := dirNames(t, dataDir); !slices.Equal(after, names) {
		t.Errorf("the data dir changed: %v → %v", names, after)
	}
	if b, _ := os.ReadFile(filepath.Join(dataDir, evidenceKeyFile)); string(b) != string(key) {
		t.Error("the evidence key changed")
	}
	stop()

	// The first, restarted after it stopped.
	_, stop = serveUntilListening(t, dataDir)
	stop()

	// The key lost: refused, and none generated in its place.
	if err := os.Remove(filepath.Join(dataDir, evidenceKeyFile)); err != nil {
		t.Fatal(err)
	}
	err = serveRefused(t, dataDir)
	if !errors.Is(err, evidence.ErrLogKey) || !strings.Contains(err.Error(), "it has no evidence key") {
		t.Errorf("lost key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, evidenceKeyFile)); !os.IsNotExist(err) {
		t.Errorf("a key was generated for a signed log: %v", err)
	}
}
