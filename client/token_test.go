package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestTokenWaitHonoursContext: while one caller's token request hangs at
// the token endpoint, another caller waiting for it leaves when its own
// context ends, not when the hanging request does.
func TestTokenWaitHonoursContext(t *testing.T) {
	t.Parallel()
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select { // hang, until the test is done with it
		case <-release:
		case <-time.After(5 * time.Second):
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"tok","token_type":"Bearer","expires_in":900}`))
	}))
	defer ts.Close()
	defer close(release)
	c, _ := New(ts.URL, WithClientSecret("bank", "s3cret"))
	first := make(chan error, 1)
	go func() { _, err := c.Token(context.Background()); first <- err }()
	<-arrived

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Token(ctx)
	if waited := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || waited > 2*time.Second {
		t.Fatalf("a 200 ms context waited %v for another caller's token request: %v", waited, err)
	}
	release <- struct{}{}
	if err := <-first; err != nil {
		t.Fatalf("the first caller: %v", err)
	}
	// The slot is free again: the token is cached and served at once.
	if tok, err := c.Token(context.Background()); err != nil || tok != "tok" {
		t.Fatalf("after: %q, %v", tok, err)
	}
}
