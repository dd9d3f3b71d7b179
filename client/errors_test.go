package client

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// residentID is a subject id that must not reach an error's text.
const residentID = "440304198001010017"

// TestErrorsLeaveQueriesOut: a request that gets no answer fails with the
// method and path, not the URL with its query (which holds subject ids),
// whether the connection drops, the context ends (still
// context.DeadlineExceeded, and a net.Error timeout) or an error of the
// HTTP client's own quotes the URL again.
func TestErrorsLeaveQueriesOut(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v1/oauth/token":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"access_token":"tok","token_type":"Bearer","expires_in":900}`))
		case r.URL.Query().Get("list") == "slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		case r.URL.Query().Get("list") == "moved":
			http.Redirect(w, r, r.URL.String(), http.StatusTemporaryRedirect)
		case strings.HasSuffix(r.URL.Path, "/results"):
			// Headers, then the connection drops mid-body.
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		default: // the connection drops before any answer
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		}
	}))
	defer ts.Close()
	clean := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		t.Logf("%s: %v", what, err)
		if msg := err.Error(); strings.Contains(msg, residentID) || strings.Contains(msg, "subject_id=") {
			t.Errorf("%s: the error quotes the URL: %s", what, msg)
		}
		if !strings.Contains(err.Error(), "/v1/") {
			t.Errorf("%s: the error does not say which request: %s", what, err)
		}
	}
	ctx := context.Background()
	c, _ := New(ts.URL, WithClientSecret("bank", "s3cret"))

	_, err := c.ListEntries(ctx, EntryQuery{Subject: residentID})
	clean("a dropped connection", err)

	_, err = c.ScreeningResults(ctx, "scr_1", "csv", &strings.Builder{})
	clean("a body cut short", err)

	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = c.ListEntries(short, EntryQuery{List: "slow", Subject: residentID})
	clean("a context deadline", err)
	var ne net.Error
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("a context deadline: %v is not context.DeadlineExceeded and a timeout", err)
	}
	timed, _ := New(ts.URL, WithClientSecret("bank", "s3cret"), WithTimeout(100*time.Millisecond))
	_, err = timed.ListEntries(ctx, EntryQuery{List: "slow", Subject: residentID})
	clean("the client's timeout", err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the client's timeout: %v is not context.DeadlineExceeded", err)
	}

	// A URL that does not parse.
	err = c.Do(ctx, http.MethodGet, "/v1/admin/entries?subject_id="+residentID+"\x7f", nil, "", nil)
	clean("a URL that does not parse", err)

	// An error of the HTTP client's that quotes the URL itself.
	h := &http.Client{CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		return errors.New("will not follow to " + req.URL.String())
	}}
	redirected, _ := New(ts.URL, WithClientSecret("bank", "s3cret"), WithHTTPClient(h))
	_, err = redirected.ListEntries(ctx, EntryQuery{List: "moved", Subject: residentID})
	clean("a redirect refused", err)
	if !strings.Contains(err.Error(), "will not follow") {
		t.Errorf("a redirect refused: the cause is lost: %v", err)
	}
}
