package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/client/audit"
	"github.com/credgate/credgate/evidence"
)

// TestAuditStateKeyProblemIsNotOutage: a state file whose checkpoint was
// signed by a key no longer pinned (the old key dropped after a rotation)
// is a problem of the auditor's setup, not an outage: audit exits 1, not 5
// (which says the server could not be read), says to keep the old key
// pinned, and writes nothing.
func TestAuditStateKeyProblemIsNotOutage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, oldSigner, oldKey := offlineReceipt(t)
	_, _, newKey := offlineReceipt(t)
	s, err := evidence.NewSigner(testOrigin, oldSigner)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := s.Sign(5, [32]byte{1})
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "audit-state.json")
	if err := audit.SaveState(state, audit.State{Origin: testOrigin, Size: 5, Checkpoint: string(cp.Note), VerifiedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// Nothing listens at the URL: the state is judged before any request,
	// so an outage cannot be what the exit status reports.
	code, out := runCLI("audit", "--key", newKey, "--url", "http://127.0.0.1:1", "--state", state, "--timeout", "2s")
	if code != 1 || !strings.Contains(out, "signed only by keys not trusted here") ||
		!strings.Contains(out, "keep the old key pinned") || strings.Contains(out, "cannot reach") {
		t.Fatalf("state signed by a key not pinned: exit %d, want 1\n%s", code, out)
	}
	// With the old key pinned beside the new one the state is usable again:
	// what remains is the outage (5).
	if code, out := runCLI("audit", "--key", newKey, "--key", oldKey, "--url", "http://127.0.0.1:1", "--state", state, "--timeout", "2s"); code != exitAuditUnfinished {
		t.Fatalf("both keys pinned, nobody listening: exit %d, want %d\n%s", code, exitAuditUnfinished, out)
	}
	if code, out := runCLI("audit", "--help"); code != 0 || !strings.Contains(out, "1 the log failed verification, or the state file or keys are unusable") {
		t.Fatalf("help: exit %d\n%s", code, out)
	}
}
