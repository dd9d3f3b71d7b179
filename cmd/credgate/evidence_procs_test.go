package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/note"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
)

// answeredCheck is a check some gateway answered, with its receipt fields.
type answeredCheck struct {
	id, recordHash, leafHash string
	index                    uint64
	gateway                  int
}

// fetchReceipt gets a receipt over HTTP and parses it strictly.
func fetchReceipt(client *http.Client, base, token, id string) (evidence.Receipt, int, error) {
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/evidence/receipts/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := client.Do(req)
	if err != nil {
		return evidence.Receipt{}, 0, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return evidence.Receipt{}, res.StatusCode, err
	}
	if res.StatusCode != http.StatusOK {
		// The problem's detail says why: a failing test needs it.
		return evidence.Receipt{}, res.StatusCode, fmt.Errorf("%s", bytes.TrimSpace(b))
	}
	r, err := evidence.ParseReceipt(b)
	return r, res.StatusCode, err
}

// latestCheckpoint fetches and verifies a gateway's latest checkpoint.
func latestCheckpoint(t *testing.T, base string, vs note.Verifiers) evidence.SignedCheckpoint {
	t.Helper()
	var view struct {
		Checkpoint string `json:"checkpoint"`
	}
	if code := getJSON(t, base, "/v1/evidence/checkpoint", "", &view); code != http.StatusOK {
		t.Fatalf("checkpoint: %d", code)
	}
	cp, err := evidence.OpenCheckpoint([]byte(view.Checkpoint), vs, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// proveConsistent checks, through a gateway, that the tree (size, root)
// is a prefix of the checkpoint cp.
func proveConsistent(t *testing.T, base string, size uint64, root [32]byte, cp evidence.SignedCheckpoint) {
	t.Helper()
	var view struct {
		Proof []string `json:"proof"`
	}
	if code := getJSON(t, base, fmt.Sprintf("/v1/evidence/consistency?from=%d&to=%d", size, cp.Size), "", &view); code != http.StatusOK {
		t.Fatalf("consistency %d→%d: %d", size, cp.Size, code)
	}
	p := make([][evidence.HashSize]byte, len(view.Proof))
	for i, s := range view.Proof {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != evidence.HashSize {
			t.Fatalf("consistency proof hash %d: %q", i, s)
		}
		p[i] = [evidence.HashSize]byte(b)
	}
	if err := evidence.VerifyConsistency(size, cp.Size, p, root, cp.Root); err != nil {
		t.Fatalf("the tree of %d records is not a prefix of the checkpoint of %d: %v", size, cp.Size, err)
	}
}

// receiptIndex is the log index of a check answer's receipt. A record the
// store could not commit within its bound is spooled and its receipt
// carries a promise instead (openapi.yaml, Receipt): an error here,
// not a panic that would end every test of the package.
func receiptIndex(m map[string]any) (uint64, error) {
	rc, _ := m["receipt"].(map[string]any)
	i, ok := rc["log_index"].(float64)
	if !ok {
		return 0, fmt.Errorf("check %v answered without a log index (receipt %v)", m["check_id"], rc)
	}
	return uint64(i), nil
}

// TestThreeGatewaysOneLog runs three `credgate serve` processes on one
// PostgreSQL database under concurrent load: every answered check must
// verify under one final checkpoint, which all three serve, and no log
// index may be used twice.
func TestThreeGatewaysOneLog(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three servers")
	}
	bin := buildBinary(t)
	pgURL := testenv.FreshDatabase(t, "credgate_crash")
	skey, err := evidence.GenerateSignerKey("credgate.test")
	if err != nil {
		t.Fatal(err)
	}
	// The store's bound far above any commit: under a starved CI machine
	// a commit past the default 2 s was spooled and answered with a
	// promise, not a log index, and this test is about the shared log
	// (the spool's are spool_fault_test.go's).
	env := []string{"CREDGATE_POSTGRES_URL=" + pgURL, "CREDGATE_EVIDENCE_KEY=" + skey, "CREDGATE_EVIDENCE_ORIGIN=" + testOrigin,
		"CREDGATE_STORE_TIMEOUT=30s"}
	var gws []*proc
	var tokens []string
	for range 3 {
		p := startServer(t, bin, t.TempDir(), env...)
		gws = append(gws, p)
		tokens = append(tokens, testenv.Token(t, p.base, testAdminID, testAdminSecret))
	}
	subject := testenv.USCC(t, "91110108MA01THRE0")

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	var (
		mu       sync.Mutex
		answered []answeredCheck
		wg       sync.WaitGroup
	)
	stop := time.Now().Add(2 * time.Second)
	for g := range gws {
		for w := range 5 {
			wg.Go(func() {
				// Bounded in time and in count.
				for i := 0; i < 2000 && time.Now().Before(stop); i++ {
					code, m, err := postJSON(client, gws[g].base+"/v1/checks", tokens[g], map[string]any{
						"subject": map[string]string{"id": subject}, "action": "government_procurement",
						"reference": fmt.Sprintf("g%d-w%d-%d", g, w, i)})
					if err != nil || code != http.StatusOK {
						t.Errorf("gateway %d: check: %d %v %v", g, code, m, err)
						return
					}
					index, err := receiptIndex(m)
					if err != nil {
						t.Errorf("gateway %d: %v", g, err)
						return
					}
					rc := m["receipt"].(map[string]any)
					mu.Lock()
					answered = append(answered, answeredCheck{id: m["check_id"].(string), index: index,
						recordHash: rc["record_hash"].(string), leafHash: rc["leaf_hash"].(string), gateway: g})
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	seen := map[uint64]string{}
	for _, a := range answered {
		if prev, dup := seen[a.index]; dup {
			t.Fatalf("log index %d used by %s and %s", a.index, prev, a.id)
		}
		seen[a.index] = a.id
	}

	vs, err := evidence.Verifiers(verifierKey(t, gws[0].base))
	if err != nil {
		t.Fatal(err)
	}
	// The receipt of the last answered check makes sure a checkpoint
	// covers everything; that checkpoint is final (no load any more).
	sort.Slice(answered, func(i, j int) bool { return answered[i].index < answered[j].index })
	last := answered[len(answered)-1]
	if _, code, err := fetchReceipt(client, gws[last.gateway].base, tokens[last.gateway], last.id); err != nil || code != http.StatusOK {
		t.Fatalf("receipt of the last check: %d %v", code, err)
	}
	final := latestCheckpoint(t, gws[0].base, vs)
	for g := range gws {
		if cp := latestCheckpoint(t, gws[g].base, vs); string(cp.Note) != string(final.Note) {
			t.Fatalf("gateway %d serves another latest checkpoint:\n%s\nvs\n%s", g, cp.Note, final.Note)
		}
	}
	if final.Size <= last.index {
		t.Fatalf("final checkpoint of %d records does not cover index %d", final.Size, last.index)
	}

	// Every answered check, asked of a gateway other than the one that
	// answered it, verifies under the final checkpoint.
	jobs := make(chan answeredCheck)
	errs := make(chan error, len(answered))
	for range 6 {
		wg.Go(func() {
			for a := range jobs {
				g := (a.gateway + 1) % len(gws)
				r, code, err := fetchReceipt(client, gws[g].base, tokens[g], a.id)
				if err != nil || code != http.StatusOK {
					errs <- fmt.Errorf("receipt of %s: %d %v", a.id, code, err)
					continue
				}
				v, err := evidence.VerifyReceipt(r, vs)
				switch {
				case err != nil:
					errs <- fmt.Errorf("receipt of %s: %w", a.id, err)
				case r.Checkpoint != string(final.Note):
					errs <- fmt.Errorf("receipt of %s proves into a checkpoint of %d records, not the final one", a.id, v.Checkpoint.Size)
				case v.Record.Index != a.index || r.RecordHash != a.recordHash || r.LeafHash != a.leafHash:
					errs <- fmt.Errorf("receipt of %s disagrees with the answer: index %d, want %d", a.id, v.Record.Index, a.index)
				}
			}
		})
	}
	for _, a := range answered {
		jobs <- a
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// The database agrees: one record per index, none missing, and the
	// tree covers them all.
	conn, err := pgx.Connect(t.Context(), pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var n, distinct, maxIdx, treeSize int64
	if err := conn.QueryRow(t.Context(), `SELECT count(*), count(DISTINCT idx), max(idx), (SELECT size FROM evidence_tree_head) FROM evidence`).
		Scan(&n, &distinct, &maxIdx, &treeSize); err != nil {
		t.Fatal(err)
	}
	if n != distinct || maxIdx != n-1 || treeSize != n {
		t.Fatalf("evidence: %d rows, %d distinct indexes, max %d, tree of %d", n, distinct, maxIdx, treeSize)
	}
	t.Logf("3 gateways answered %d checks; all verify under the checkpoint of %d records", len(answered), final.Size)
}

// TestSIGKILLReceiptsVerifyLater collects receipts under load, kills the
// server with SIGKILL, restarts it on the same data and proves that every
// receipt collected before the kill (and every answered check's receipt
// fetched after) is consistent with a later checkpoint.
func TestSIGKILLReceiptsVerifyLater(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a server")
	}
	bin := buildBinary(t)
	t.Run("sqlite", func(t *testing.T) { receiptCrashRun(t, bin, nil) })
	t.Run("postgres", func(t *testing.T) {
		receiptCrashRun(t, bin, []string{"CREDGATE_POSTGRES_URL=" + testenv.FreshDatabase(t, "credgate_crash")})
	})
}

func receiptCrashRun(t *testing.T, bin string, env []string) {
	dataDir := t.TempDir()
	env = append(env, "CREDGATE_EVIDENCE_ORIGIN="+testOrigin)
	srv := startServer(t, bin, dataDir, env...)
	admin := testenv.Token(t, srv.base, testAdminID, testAdminSecret)
	subject := testenv.USCC(t, "91110108MA01KLL00")
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	var (
		mu       sync.Mutex
		receipts []evidence.Receipt
		answered []string
		wg       sync.WaitGroup
	)
	stop := make(chan struct{})
	for w := range 6 {
		wg.Go(func() {
			for i := 0; i < 5000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				code, m, err := postJSON(client, srv.base+"/v1/checks", admin, map[string]any{
					"subject": map[string]string{"id": subject}, "action": "government_procurement",
					"reference": fmt.Sprintf("w%d-%d", w, i)})
				if err != nil || code != http.StatusOK {
					continue // the kill cuts requests off; only answers count
				}
				id := m["check_id"].(string)
				mu.Lock()
				answered = append(answered, id)
				mu.Unlock()
				r, code, err := fetchReceipt(client, srv.base, admin, id)
				if err != nil || code != http.StatusOK {
					continue
				}
				mu.Lock()
				receipts = append(receipts, r)
				mu.Unlock()
			}
		})
	}
	loadUntil(1500*time.Millisecond, func() bool { mu.Lock(); defer mu.Unlock(); return len(receipts) >= 150 })
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = srv.cmd.Wait()
	close(stop)
	wg.Wait()
	if len(receipts) < 10 {
		t.Fatalf("only %d receipts before the kill:\n%s", len(receipts), srv.logs.String())
	}

	srv2 := startServer(t, bin, dataDir, env...)
	admin = testenv.Token(t, srv2.base, testAdminID, testAdminSecret)
	vs, err := evidence.Verifiers(verifierKey(t, srv2.base))
	if err != nil {
		t.Fatal(err)
	}
	// Grow the log after the restart and make a checkpoint cover it.
	for range 3 {
		mustCheck(t, srv2.base, admin, subject)
	}
	m := mustCheck(t, srv2.base, admin, subject)
	if _, code, err := fetchReceipt(client, srv2.base, admin, m["check_id"].(string)); err != nil || code != http.StatusOK {
		t.Fatalf("receipt after restart: %d %v", code, err)
	}
	later := latestCheckpoint(t, srv2.base, vs)

	proven := map[uint64]bool{}
	for _, r := range receipts {
		v, err := evidence.VerifyReceipt(r, vs)
		if err != nil {
			t.Fatalf("receipt of %s collected before the kill: %v", r.Record.ID, err)
		}
		if v.Checkpoint.Size >= later.Size {
			t.Fatalf("checkpoint of %d after the restart is not later than %d", later.Size, v.Checkpoint.Size)
		}
		if !proven[v.Checkpoint.Size] {
			proveConsistent(t, srv2.base, v.Checkpoint.Size, v.Checkpoint.Root, later)
			proven[v.Checkpoint.Size] = true
		}
	}
	// Checks answered without a receipt before the kill get one now, under
	// the later checkpoint.
	for _, id := range answered {
		r, code, err := fetchReceipt(client, srv2.base, admin, id)
		if err != nil || code != http.StatusOK {
			t.Fatalf("answered check %s has no receipt after the restart: %d %v", id, code, err)
		}
		if _, err := evidence.VerifyReceipt(r, vs); err != nil {
			t.Fatalf("answered check %s: %v", id, err)
		}
	}
	t.Logf("%d receipts from before SIGKILL (under %d checkpoints) and %d answered checks verify under the checkpoint of %d records",
		len(receipts), len(proven), len(answered), later.Size)
}
