package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// POST /v1/checks with Idempotency-Key, each exchange validated against
// openapi.yaml: a retry replays the first answer byte for byte with
// Idempotent-Replayed: true and records nothing; the key with another
// body is 422 idempotency_key_reused; a malformed key is 400; concurrent
// retries record once.

// eachHarnessStore runs test on a harness over SQLite and over PostgreSQL
// (a database of its own).
func eachHarnessStore(t *testing.T, test func(t *testing.T, h *harness)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		test(t, newHarness(t))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		st, err := postgres.Open(t.Context(), testenv.FreshDatabase(t, "credgate_idempotency"))
		if err != nil {
			t.Fatal(err)
		}
		test(t, newHarness(t, func(c *harnessConfig) { c.store = st }))
	})
}

// keyedPost posts body to path with the Idempotency-Key key (none when
// nil), the exchange validated against c (the harness's contract when
// nil).
func (h *harness) keyedPost(c *contract, path, token string, key []string, body string) response {
	h.t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	for _, k := range key {
		req.Header.Add("Idempotency-Key", k)
	}
	if c == nil {
		return h.send(req, []byte(body))
	}
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	res := response{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
	if msg := c.check(http.MethodPost, path, "application/json", []byte(body), res.Status, res.Header, res.Body); msg != "" {
		h.t.Error(msg)
	}
	return res
}

// keyedCheck posts body to /v1/checks with the Idempotency-Key key (none
// when nil).
func (h *harness) keyedCheck(token string, key []string, body string) response {
	h.t.Helper()
	return h.keyedPost(nil, "/v1/checks", token, key, body)
}

// wantRecorded fails unless res is a 200 answered anew: no
// Idempotent-Replayed.
func wantRecorded(t *testing.T, what string, res response) {
	t.Helper()
	if res.Status != http.StatusOK || res.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("%s: %d, Idempotent-Replayed %q: %s", what, res.Status, res.Header.Get("Idempotent-Replayed"), res.Body)
	}
}

// wantReplayOf fails unless again is first replayed: a 200 with
// Idempotent-Replayed: true and first's bytes.
func wantReplayOf(t *testing.T, again, first response) {
	t.Helper()
	if again.Status != http.StatusOK || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry: %d, Idempotent-Replayed %q: %s", again.Status, again.Header.Get("Idempotent-Replayed"), again.Body)
	}
	if !bytes.Equal(again.Body, first.Body) {
		t.Fatalf("the replay differs:\n got %s\nwant %s", again.Body, first.Body)
	}
}

// concurrentKeyed posts body to path n times at once under one new key,
// each exchange validated against openapi.yaml, and fails unless every
// answer is a 200 of the same bytes and all but one are replays. The
// caller counts what was recorded.
func (h *harness) concurrentKeyed(path, token, key, body string, n int) {
	h.t.Helper()
	got := make([]response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", key)
			rec := httptest.NewRecorder()
			h.handler.ServeHTTP(rec, req)
			got[i] = response{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
		})
	}
	wg.Wait()
	replays := 0
	for i := range n {
		validateContract(h.t, http.MethodPost, path, "application/json", []byte(body), got[i].Status, got[i].Header, got[i].Body)
		if got[i].Status != http.StatusOK || !bytes.Equal(got[i].Body, got[0].Body) {
			h.t.Fatalf("request %d: %d %s\nrequest 0: %s", i, got[i].Status, got[i].Body, got[0].Body)
		}
		if got[i].Header.Get("Idempotent-Replayed") == "true" {
			replays++
		}
	}
	if replays != n-1 {
		h.t.Fatalf("%d of %d concurrent requests replayed, want %d", replays, n, n-1)
	}
}

// keylessTwice posts body to path twice without a key and fails unless
// each is a 200 answered anew that names no key. The caller counts the
// two records.
func (h *harness) keylessTwice(path, token, body string) {
	h.t.Helper()
	for range 2 {
		res := h.keyedPost(nil, path, token, nil, body)
		if res.Status != http.StatusOK || res.Header.Get("Idempotent-Replayed") != "" || bytes.Contains(res.Body, []byte("idempotency_key")) {
			h.t.Fatalf("keyless: %d %v %s", res.Status, res.Header, res.Body)
		}
	}
}

// checkRecordCount is the log's check records.
func (h *harness) checkRecordCount() int {
	h.t.Helper()
	head, err := h.store.TreeHead(h.t.Context())
	if err != nil {
		h.t.Fatal(err)
	}
	recs, err := h.store.RecordsBetween(h.t.Context(), 0, head.Size+100)
	if err != nil {
		h.t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Kind == "check" {
			n++
		}
	}
	return n
}

func TestCheckIdempotencyKey(t *testing.T) {
	eachHarnessStore(t, func(t *testing.T, h *harness) {
		_, tok := h.partner("bank", "bank_credit")
		const body = `{"subject":{"id":"91350100M000100Y43"},"action":"bank_credit","reference":"LOAN-7"}`
		key := []string{`"7f0e9a4c-idem"`}

		first := h.keyedCheck(tok, key, body)
		wantRecorded(t, "first", first)
		if got := first.json(t)["idempotency_key"]; got != "7f0e9a4c-idem" {
			t.Fatalf("idempotency_key %v in the answer", got)
		}
		base := h.checkRecordCount()

		// The retry, the key sent bare this time: the same bytes.
		wantReplayOf(t, h.keyedCheck(tok, []string{"7f0e9a4c-idem"}, body), first)
		if n := h.checkRecordCount(); n != base {
			t.Fatalf("%d check records after the replay, %d before", n, base)
		}
		// GET /v1/checks/{id} finds the one check.
		id := first.json(t)["check_id"].(string)
		if res := h.do(http.MethodGet, "/v1/checks/"+id, tok, "", nil); res.Status != http.StatusOK {
			t.Fatalf("GET the check: %d %s", res.Status, res.Body)
		}

		// Another request under the key.
		pr := problemCode(t, h.keyedCheck(tok, key, strings.Replace(body, "LOAN-7", "LOAN-8", 1)),
			http.StatusUnprocessableEntity, "idempotency_key_reused")
		if pr["field"] != "Idempotency-Key" {
			t.Fatalf("field %v", pr["field"])
		}
		// Malformed keys.
		for _, bad := range [][]string{{""}, {`""`}, {"tab\there"}, {strings.Repeat("k", 256)}, {`"open`}, {"a", "b"}, {"é"}} {
			problemCode(t, h.keyedCheck(tok, bad, body), http.StatusBadRequest, "invalid_idempotency_key")
		}
		if n := h.checkRecordCount(); n != base {
			t.Fatalf("%d check records after refusals, %d before", n, base)
		}

		// Concurrent requests with a new key: one check.
		const n = 6
		h.concurrentKeyed("/v1/checks", tok, "concurrent-1", body, n)
		if c := h.checkRecordCount(); c != base+1 {
			t.Fatalf("%d check records after %d concurrent requests with one key, want %d", c, n, base+1)
		}

		// Without the key, every check is recorded, without the header.
		h.keylessTwice("/v1/checks", tok, body)
		if c := h.checkRecordCount(); c != base+3 {
			t.Fatalf("%d check records, want %d", c, base+3)
		}
	})
}

// downLog is an evidence log whose database is away.
type downLog struct{}

func (downLog) Append(context.Context, ...evidence.Record) ([]evidence.Record, error) {
	return nil, fmt.Errorf("%w: connection refused", evidence.ErrUnavailable)
}

// TestCheckIdempotencyKeyStoreAway: a keyed check whose record cannot be
// committed is 503 store_unavailable with Retry-After (it is never
// spooled: its retry must find it or record it), where a keyless one is
// evidence_unavailable as before.
func TestCheckIdempotencyKeyStoreAway(t *testing.T) {
	testKeyedStoreAway(t, "/v1/checks", `{"subject":{"id":"91350100M000100Y43"},"action":"bank_credit"}`)
}

// testKeyedStoreAway posts body to path, with a key and without, to a
// harness whose check log is away: keyed, 503 store_unavailable with
// Retry-After; keyless, evidence_unavailable.
func testKeyedStoreAway(t *testing.T, path, body string) {
	t.Helper()
	h := newHarness(t, func(c *harnessConfig) {
		c.checkLog = func(*evidence.Appender, service.Store) service.EvidenceLog { return downLog{} }
	})
	_, tok := h.partner("bank", "bank_credit")
	res := h.keyedPost(nil, path, tok, []string{"away-1"}, body)
	problemCode(t, res, http.StatusServiceUnavailable, "store_unavailable")
	if res.Header.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q", res.Header.Get("Retry-After"))
	}
	problemCode(t, h.keyedPost(nil, path, tok, nil, body), http.StatusServiceUnavailable, "evidence_unavailable")
}
