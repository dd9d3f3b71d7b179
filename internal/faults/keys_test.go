package faults

import (
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
)

// Finding 3: a replica started without the shared evidence key generated
// its own and signed checkpoints with it, and every receipt then failed.
// A second replica on the first's database, with another key and with
// none, refuses to start and says what to copy where; the first one's
// receipts keep verifying; with the shared key it starts.
func TestReplicaWithWrongKeyRefusesStart(t *testing.T) {
	t.Parallel()
	pgURL := testenv.FreshDatabase(t, "credgate_faults_keys")
	key, err := evidence.GenerateSignerKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	first := startServer(t, "CREDGATE_POSTGRES_URL="+pgURL, "CREDGATE_EVIDENCE_KEY="+key)
	a := newAPI(first.base)
	admin := a.adminToken(t)
	id := a.mustCheck(t, admin, subject(t, 5, 1))
	vkeys := a.verifiers(t)
	eventually(t, "a checkpoint covering the first check", 10*time.Second, func() error { return a.verifyReceipt(admin, id, vkeys) })

	other, err := evidence.GenerateSignerKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	second := newServer(t, "CREDGATE_POSTGRES_URL="+pgURL)
	for name, env := range map[string][]string{
		"another key": {"CREDGATE_EVIDENCE_KEY=" + other},
		"no key":      nil,
	} {
		out := second.refused(env...)
		for _, want := range []string{"which this replica does not have", "copy evidence-signing.key", "CREDGATE_EVIDENCE_KEY"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: the refusal does not say %q:\n%s", name, want, out)
			}
		}
		t.Logf("%s: %s", name, strings.TrimSpace(out))
	}
	if err := a.verifyReceipt(admin, id, vkeys); err != nil {
		t.Errorf("the first replica's receipt after the refusals: %v", err)
	}
	second.env = append(second.env, "CREDGATE_EVIDENCE_KEY="+key)
	second.start()
	b := newAPI(second.base)
	admin2 := b.adminToken(t)
	id2 := b.mustCheck(t, admin2, subject(t, 5, 2))
	for _, c := range []string{id, id2} {
		eventually(t, "receipt "+c, 10*time.Second, func() error { return b.verifyReceipt(admin2, c, vkeys) })
	}
}

// Finding 3: two `serve` processes on one ./data started side by side.
// The second is refused, naming the first's pid; once the first is gone
// (SIGKILL: the lock goes with the process) the data dir starts again.
func TestTwoServersOnOneDataDirRefused(t *testing.T) {
	t.Parallel()
	first := startServer(t)
	out := first.refused()
	for _, want := range []string{"the data dir is in use by another credgate", "locked by process"} {
		if !strings.Contains(out, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, out)
		}
	}
	t.Logf("refused: %s", strings.TrimSpace(out))
	first.kill()
	first.start()
	a := newAPI(first.base)
	a.mustCheck(t, a.adminToken(t), subject(t, 5, 3))
}
