package console_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/credgate/credgate/service"
)

// TestUnplainRequestsRefused: a signed-in request whose path, query or
// form holds bytes that are not UTF-8, NUL or (in a form) another control
// character is refused before any handler or store sees it: 404 for a
// path, 400 otherwise, and nothing is changed. PostgreSQL cannot store
// U+0000 (SQLite could), so the same form succeeded on one deployment and
// failed with a 500 on the other.
func TestUnplainRequestsRefused(t *testing.T) {
	h := newHarness(t)
	b, token := h.signedIn(adminID, adminSecret)
	if p := b.get("/console/entries/e%00x"); p.status != http.StatusNotFound {
		t.Errorf("a path with NUL: %d", p.status)
	}
	for _, q := range []string{"x=%00", "x=%FF", "%FF=1"} {
		if p := b.get("/console/overview?" + q); p.status != http.StatusBadRequest {
			t.Errorf("overview?%s: %d", q, p.status)
		}
	}
	if p := b.get("/console/overview?x=a%09b"); p.status != http.StatusOK {
		t.Errorf("a query with a tab: %d", p.status)
	}
	before := h.actCount(service.ActPartnerCreated)
	for _, bad := range []string{"a\x00b", "a\x1b[2Jb", "a\xffb"} {
		form := url.Values{"csrf": {token}, "name": {"某银行"}, "role": {"partner"}, "actions": {"government_procurement"}, "note": {bad}}
		if p := b.post("/console/partners", form); p.status != http.StatusBadRequest {
			t.Errorf("a form with %q: %d", bad, p.status)
		}
	}
	if h.actCount(service.ActPartnerCreated) != before {
		t.Fatal("a refused form created a partner")
	}
}

// TestSignInWithUnplainIDFails: a client id that is not UTF-8 or holds a
// control character is a failed sign-in, counted by the throttle, and
// never reaches the store (PostgreSQL fails on NUL).
func TestSignInWithUnplainIDFails(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	for i := range 10 {
		id := adminID + "\x00"
		if i%2 == 1 {
			id = adminID + "\xff"
		}
		if p := b.signIn(id, adminSecret); p.status != http.StatusUnauthorized {
			t.Fatalf("sign in as %q: %d", id, p.status)
		}
	}
	if p := b.signIn(adminID, adminSecret); p.status != http.StatusTooManyRequests {
		t.Fatalf("after 10 such failures the right credentials: %d", p.status)
	}
}
