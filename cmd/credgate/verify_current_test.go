package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
)

// otherHistoryReceipt writes the receipt of record idx of an n-record log
// signed with signerKey, the server's own key, but of records the server
// never held: the receipt an auditor keeps of a record lost when the log
// was restored from an older copy (and grew again), or rewritten by an
// insider holding the key. Offline it verifies.
func otherHistoryReceipt(t *testing.T, signerKey string, n, idx uint64, path string) {
	t.Helper()
	s, err := evidence.NewSigner(testOrigin, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	tree, _ := evidence.TreeFrom(evidence.Head{Root: evidence.EmptyRoot()})
	nodes := nodeMap{}
	var rec evidence.Record
	for i := range n {
		r := evidence.Record{Index: i, ID: "chk-lost", Kind: evidence.KindCheck, Partner: "p",
			At: time.Date(2031, 1, 1, 0, 0, 0, int(i), time.UTC), Body: []byte(`{"outcome":"prohibit"}`)}
		if err := r.Seal(); err != nil {
			t.Fatal(err)
		}
		if i == idx {
			rec = r
		}
		tree.Append(evidence.LeafHash(r), func(id evidence.NodeID, h [evidence.HashSize]byte) { nodes[id] = h })
	}
	cp, err := s.Sign(tree.Size(), tree.Root())
	if err != nil {
		t.Fatal(err)
	}
	p, err := evidence.InclusionProof(context.Background(), nodes, idx, n)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(evidence.NewReceipt(rec, p, cp))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyReceiptStillInLog runs the real server and re-proves receipts
// against its log as it is now (verify --url): receipts it gave verify and
// are proven still in the log after it grew; a receipt signed with the
// server's key for a history the log does not hold (a rollback, a fork)
// verifies offline, and FAILS online naming the rollback or fork; a server
// that cannot be reached is exit 5, not a verdict.
func TestVerifyReceiptStillInLog(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a server")
	}
	t.Parallel()
	srv := startInProcess(t, "--checkpoint-interval", "1h")
	dir := t.TempDir()
	partner := createPartner(t, srv.base, srv.adminToken, "government_procurement")
	vkey := verifierKey(t, srv.base)
	subject := testenv.USCC(t, "91110108MA01CUR00")
	var files []string
	for range 3 {
		id := mustCheck(t, srv.base, partner, subject)["check_id"].(string)
		f, code := saveReceipt(t, srv.base, partner, id, dir)
		if code != http.StatusOK {
			t.Fatalf("receipt %s: %d", id, code)
		}
		files = append(files, f)
	}
	// The log grows past the receipts' checkpoints (fetching a receipt
	// signs one covering it).
	for range 3 {
		id := mustCheck(t, srv.base, partner, subject)["check_id"].(string)
		if _, code := saveReceipt(t, srv.base, partner, id, filepath.Join(dir, "later")); code != http.StatusOK {
			t.Fatalf("receipt %s: %d", id, code)
		}
	}
	code, out := runCLI(append([]string{"verify", "--key", vkey, "--url", srv.base}, files...)...)
	if code != 0 || strings.Count(out, "still in the log at "+srv.base) != len(files) {
		t.Fatalf("receipts the log gave: exit %d\n%s", code, out)
	}

	key, err := os.ReadFile(filepath.Join(srv.dataDir, evidenceKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	forked, rolledBack := filepath.Join(dir, "forked.json"), filepath.Join(dir, "rolled-back.json")
	otherHistoryReceipt(t, string(key), 3, 1, forked)
	otherHistoryReceipt(t, string(key), 5000, 4321, rolledBack)
	// Offline they verify: nothing in a receipt alone tells.
	if code, out := runCLI("verify", "--key", vkey, forked, rolledBack); code != 0 {
		t.Fatalf("offline: exit %d\n%s", code, out)
	}
	code, out = runCLI("verify", "--key", vkey, "--url", srv.base, files[0], forked, rolledBack)
	if code != 1 || !strings.Contains(out, "forked.json: FAILED: record 1: not in the current log: rolled back or forked: the log of 3 records the receipt's checkpoint signed is not a prefix of today's log") ||
		!strings.Contains(out, "rolled-back.json: FAILED: record 4321: not in the current log: rolled back: the receipt's checkpoint signed 5000 records") ||
		!strings.Contains(out, filepath.Base(files[0])+": OK:") || !strings.Contains(out, "2 of 3 receipts") {
		t.Fatalf("receipts of another history: exit %d\n%s", code, out)
	}

	// An erased record's receipt still in the log: ERASED (3), re-proven.
	raw, _ := os.ReadFile(files[1])
	var r evidence.Receipt
	_ = json.Unmarshal(raw, &r)
	r.Record.Body, r.Record.Salt = "", ""
	erased := filepath.Join(dir, "erased.json")
	b, _ := json.Marshal(r)
	_ = os.WriteFile(erased, b, 0o600)
	if code, out := runCLI("verify", "--key", vkey, "--url", srv.base, erased); code != exitErased ||
		!strings.Contains(out, "erased.json: ERASED:") || !strings.Contains(out, "still in the log at") {
		t.Fatalf("erased receipt online: exit %d\n%s", code, out)
	}

	// Nobody listening: unfinished (5), not a verdict on any receipt.
	code, out = runCLI("verify", "--key", vkey, "--url", "http://127.0.0.1:1", "--timeout", "2s", files[0], forked)
	if code != exitVerifyUnfinished || strings.Contains(out, "FAILED") || strings.Contains(out, "OK:") || !strings.Contains(out, "cannot reach credgate at http://127.0.0.1:1") {
		t.Fatalf("unreachable: exit %d, want %d\n%s", code, exitVerifyUnfinished, out)
	}
	// The checkpoint read, the consistency proof refused (a failing
	// server): that receipt is unfinished (5), a failure still wins (1).
	target, _ := url.Parse(srv.base)
	proxy := httputil.NewSingleHostReverseProxy(target)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/evidence/consistency") {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer failing.Close()
	code, out = runCLI("verify", "--key", vkey, "--url", failing.URL, "--timeout", "5s", files[0])
	if code != exitVerifyUnfinished || !strings.Contains(out, "UNFINISHED: verified offline, but not re-proven in today's log") || strings.Contains(out, "FAILED") {
		t.Fatalf("consistency refused: exit %d, want %d\n%s", code, exitVerifyUnfinished, out)
	}
	if code, out := runCLI("verify", "--key", vkey, "--url", failing.URL, "--timeout", "5s", files[0], rolledBack); code != 1 {
		t.Fatalf("consistency refused and a receipt failed: exit %d, want 1\n%s", code, out)
	}
	// Today's checkpoint must verify with the pinned keys.
	_, _, otherKey := offlineReceipt(t)
	if code, out := runCLI("verify", "--key", otherKey, "--url", srv.base, files[0]); code != 1 ||
		!strings.Contains(out, "FAILED: the checkpoint "+srv.base+" serves now: checkpoint signature does not verify: signed only by keys not trusted here") {
		t.Fatalf("unpinned key: exit %d\n%s", code, out)
	}
	if code, out := runCLI("verify", "--help"); code != 0 || !strings.Contains(out, "5 with --url, the log could not be read") {
		t.Fatalf("help: exit %d\n%s", code, out)
	}
}

// TestVerifyScreeningReceiptStillInLog: the chained receipts credgate
// screen writes are re-proven in the log too: the job's record, under
// whose root the answer is proven, is still in the log now.
func TestVerifyScreeningReceiptStillInLog(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a server")
	}
	t.Parallel()
	f := newScreenFixture(t, 20)
	book := filepath.Join(f.dir, "book.csv")
	if err := os.WriteFile(book, []byte("id\n"+strings.Join(f.subjects, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	receipts := filepath.Join(f.dir, "receipts")
	if code, out := runCLI("screen", book, "--action", "bank_credit", "--out", filepath.Join(f.dir, "out.csv"), "--url", f.srv.base,
		"--credentials", f.partnerCred, "--receipts", receipts, "--poll", "100ms"); code != 0 {
		t.Fatalf("screen: exit %d\n%s", code, out)
	}
	entries, err := os.ReadDir(receipts)
	if err != nil || len(entries) == 0 {
		t.Fatalf("no chained receipts: %v", err)
	}
	args := []string{"verify", "--key", f.vkey, "--url", f.srv.base}
	for _, e := range entries {
		args = append(args, filepath.Join(receipts, e.Name()))
	}
	if code, out := runCLI(args...); code != 0 || strings.Count(out, "still in the log at "+f.srv.base) != len(entries) ||
		!strings.Contains(out, "in screening scr_") {
		t.Fatalf("chained receipts online: exit %d\n%s", code, out)
	}
}
