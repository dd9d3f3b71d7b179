package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// TestSignInBurstIsThrottled: simultaneous wrong secrets from one address
// get at most the address's allowance (10) of "wrong secret" pages; the
// rest are throttled. When the throttle only read its counter before the
// secret was checked, and counted the failure after, the whole burst
// passed the read while the others were being verified.
func TestSignInBurstIsThrottled(t *testing.T) {
	h := newHarness(t)
	b := h.from("198.51.100.1:4000", nil)
	token := b.get("/console/signin").csrf()
	form := url.Values{"csrf": {token}, "client_id": {adminID}, "client_secret": {"wrong"}}.Encode()
	const n = 100
	codes := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := httptest.NewRequest(http.MethodPost, "/console/signin", strings.NewReader(form))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.RemoteAddr = b.remote
			for _, c := range b.cookies {
				req.AddCookie(c)
			}
			<-start
			rec := httptest.NewRecorder()
			h.h.ServeHTTP(rec, req)
			codes[i] = rec.Code
		}()
	}
	close(start)
	wg.Wait()
	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	if count[http.StatusUnauthorized] > 10 || count[http.StatusUnauthorized]+count[http.StatusTooManyRequests] != n {
		t.Fatalf("%d simultaneous wrong secrets from one address: %v (status: count), want at most 10 × 401 and the rest 429", n, count)
	}
	if p := b.signIn(adminID, adminSecret); p.status != http.StatusTooManyRequests {
		t.Fatalf("the right secret after the burst: %d", p.status)
	}
}

// TestSignInSuccessesAreNotCharged: an attempt holds a unit of the
// allowance while its secret is checked; a user who signs in correctly
// gets it back, however often they sign in.
func TestSignInSuccessesAreNotCharged(t *testing.T) {
	h := newHarness(t)
	b := h.from("198.51.100.1:4000", nil)
	for range 9 {
		if p := b.signIn(adminID, "wrong"); p.status != http.StatusUnauthorized {
			t.Fatalf("wrong secret: %d", p.status)
		}
	}
	for i := range 20 {
		if p := h.from("198.51.100.1:4000", nil).signIn(adminID, adminSecret); p.status != http.StatusSeeOther {
			t.Fatalf("right secret %d after 9 failures: %d", i+1, p.status)
		}
	}
	// The tenth failure is still allowed, the eleventh attempt is not.
	if p := b.signIn(adminID, "wrong"); p.status != http.StatusUnauthorized {
		t.Fatalf("tenth wrong secret: %d", p.status)
	}
	if p := b.signIn(adminID, adminSecret); p.status != http.StatusTooManyRequests {
		t.Fatalf("after 10 failures the right secret: %d", p.status)
	}
}

// TestSignInServerErrorsAreNotCharged: a sign-in whose secret could not be
// checked (here its request was cancelled) gives its unit back.
func TestSignInServerErrorsAreNotCharged(t *testing.T) {
	h := newHarness(t)
	b := h.from("198.51.100.1:4000", nil)
	token := b.get("/console/signin").csrf()
	form := url.Values{"csrf": {token}, "client_id": {adminID}, "client_secret": {"wrong"}}.Encode()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 20 {
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/console/signin", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = b.remote
		for _, c := range b.cookies {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		h.h.ServeHTTP(rec, req)
		if rec.Code < http.StatusInternalServerError {
			t.Fatalf("a sign-in whose request was cancelled: %d", rec.Code)
		}
	}
	if p := b.signIn(adminID, adminSecret); p.status != http.StatusSeeOther {
		t.Fatalf("the right secret after 20 server errors: %d", p.status)
	}
}
