package console

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/service"
)

// TestOverlongClientIDsAreNotKept: an id longer than any partner's names
// nobody; a failed sign-in with one counts against its address only, so
// that a stream of 60,000-character ids does not fill memory with keys.
func TestOverlongClientIDsAreNotKept(t *testing.T) {
	c := &Console{logger: slog.New(slog.DiscardHandler), now: time.Now, zone: chinaTime, throttle: newThrottle(), origin: peerOrigin}
	var err error
	if c.msgs, err = loadCatalogues(); err != nil {
		t.Fatal(err)
	}
	if c.pages, err = parsePages(); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 60_000)
	for i := range 5 {
		form := url.Values{"csrf": {"tok"}, "client_id": {long + fmt.Sprint(i)}, "client_secret": {"s"}}
		r := httptest.NewRequest(http.MethodPost, "/console/signin", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.AddCookie(&http.Cookie{Name: signinCookie, Value: "tok"})
		r.RemoteAddr = fmt.Sprintf("198.51.100.%d:4000", i+1)
		w := httptest.NewRecorder()
		c.signin(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("over-long id: %d", w.Code)
		}
	}
	c.throttle.mu.Lock()
	defer c.throttle.mu.Unlock()
	for k := range c.throttle.keys {
		if len(k) > len("id:")+service.MaxClientIDLen {
			t.Fatalf("a key of %d bytes is kept", len(k))
		}
	}
	if len(c.throttle.keys) != 5 {
		t.Fatalf("%d keys kept, want the 5 addresses", len(c.throttle.keys))
	}
}
