package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestCheckIdempotencyKey: CheckRequest.IdempotencyKey is sent as the
// Idempotency-Key header, quoted as the draft writes it, on every attempt
// (a retry after 503 overloaded too), never in the body; an answer with
// Idempotent-Replayed: true is Replayed.
func TestCheckIdempotencyKey(t *testing.T) {
	t.Parallel()
	f := &fakeCredgate{t: t, ttl: 900, valid: map[string]bool{}}
	var (
		mu   sync.Mutex
		keys []string
		seen = map[string]bool{}
	)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/checks" {
			k := r.Header.Get("Idempotency-Key")
			mu.Lock()
			keys = append(keys, k)
			if k != "" && seen[k] && f.shed.Load() <= 0 {
				w.Header().Set("Idempotent-Replayed", "true")
			}
			if f.shed.Load() <= 0 {
				seen[k] = true
			}
			mu.Unlock()
		}
		f.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	c, err := New(ts.URL+"/", WithClientSecret("bank", "s3cret"), WithOverloadRetries(1))
	if err != nil {
		t.Fatal(err)
	}
	c.sleep = func(context.Context, time.Duration) error { return nil }
	req := CheckRequest{Subject: Subject{ID: "91350100M000100Y43"}, Action: "bank_credit", IdempotencyKey: `k-1 "q" \`}

	f.shed.Store(1) // the first attempt is refused overloaded, the retry answered
	a, err := c.Check(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if a.Replayed || a.CheckID != "chk_1" {
		t.Fatalf("first: %+v", a)
	}
	b, err := c.Check(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Replayed {
		t.Fatal("a replayed answer is not Replayed")
	}
	if _, err := c.Check(t.Context(), CheckRequest{Subject: Subject{ID: "91350100M000100Y43"}, Action: "bank_credit"}); err != nil {
		t.Fatal(err)
	}
	want := `"k-1 \"q\" \\"`
	if len(keys) != 4 || keys[0] != want || keys[1] != want || keys[2] != want || keys[3] != "" {
		t.Fatalf("Idempotency-Key sent: %q, want %q thrice then none", keys, want)
	}
}
