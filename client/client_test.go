package client

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// fakeCredgate answers the token endpoint and one protected route the way
// credgate does, counting what it sees.
type fakeCredgate struct {
	t          *testing.T
	ttl        int
	tokens     atomic.Int32
	mu         sync.Mutex
	valid      map[string]bool
	pub        ed25519.PublicKey // for private_key_jwt
	rejectNext atomic.Bool       // refuse the next valid token, as after a key rotation
	// shed refuses that many more checks 503 (shedCode, default
	// overloaded), with Retry-After 1, 2, … in turn; checks counts them all.
	shed     atomic.Int32
	shedCode string
	checks   atomic.Int32
	// answer, when set, is the body of every answered check, and batch
	// that of every batch.
	answer, batch []byte
}

func (f *fakeCredgate) problem(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Request-Id", "req-1")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "urn:credgate:problem:" + code, "title": code, "status": status,
		"code": code, "detail": detail})
}

func (f *fakeCredgate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v1/oauth/token":
		_ = r.ParseForm()
		if r.PostForm.Get("grant_type") != "client_credentials" {
			f.problem(w, 400, "unsupported_grant_type", "")
			return
		}
		id, secret, basic := r.BasicAuth()
		switch {
		case basic && id == "bank" && secret == "s3cret":
		case !basic && r.PostForm.Get("client_assertion_type") == ClientAssertionType:
			tok, err := jwt.Parse(r.PostForm.Get("client_assertion"), func(*jwt.Token) (any, error) { return f.pub, nil },
				jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithAudience("credgate"), jwt.WithIssuer("bank"))
			if err != nil || tok.Header["kid"] != "k1" {
				f.problem(w, 401, "invalid_client", "bad assertion")
				return
			}
		default:
			f.problem(w, 401, "invalid_client", "")
			return
		}
		n := f.tokens.Add(1)
		tok := "tok-" + string(rune('a'+n))
		f.mu.Lock()
		f.valid[tok] = true
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": f.ttl})
	case "/v1/checks":
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		f.mu.Lock()
		ok := f.valid[tok]
		f.mu.Unlock()
		if !ok || f.rejectNext.CompareAndSwap(true, false) {
			f.problem(w, 401, "invalid_token", "expired")
			return
		}
		n := f.checks.Add(1)
		if f.shed.Add(-1) >= 0 {
			code := f.shedCode
			if code == "" {
				code = "overloaded"
			}
			w.Header().Set("Retry-After", strconv.Itoa(int(n)))
			f.problem(w, http.StatusServiceUnavailable, code, "at capacity")
			return
		}
		var req CheckRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Subject.ID == "bad" {
			f.problem(w, 400, "invalid_subject", "check character")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if f.answer != nil {
			_, _ = w.Write(f.answer)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"check_id": "chk_1", "outcome": "clear", "action": req.Action,
			"receipt": map[string]any{"log_index": 7}})
	case "/v1/checks:batch":
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(f.batch)
	case "/slow":
		time.Sleep(300 * time.Millisecond)
	case "/teapot":
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte("<html>no</html>"))
	}
}

func newFake(t *testing.T) (*fakeCredgate, *httptest.Server) {
	f := &fakeCredgate{t: t, ttl: 900, valid: map[string]bool{}}
	ts := httptest.NewServer(f)
	t.Cleanup(ts.Close)
	return f, ts
}

func TestTokenCachedRefreshedAndRetried(t *testing.T) {
	t.Parallel()
	f, ts := newFake(t)
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC).UnixNano())
	c, err := New(ts.URL+"/", WithClientSecret("bank", "s3cret"), withClock(func() time.Time { return time.Unix(0, now.Load()) }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	check := func() CheckAnswer {
		t.Helper()
		a, err := c.Check(ctx, CheckRequest{Subject: Subject{ID: "91350100M000100Y43"}, Action: "bank_credit"})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	// Concurrent first calls share one token.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { check() })
	}
	wg.Wait()
	if n := f.tokens.Load(); n != 1 {
		t.Fatalf("%d tokens for concurrent calls, want 1", n)
	}
	a := check()
	if a.CheckID != "chk_1" || a.Outcome != "clear" || a.Receipt.LogIndex == nil || *a.Receipt.LogIndex != 7 || !strings.Contains(string(a.Raw), `"check_id"`) {
		t.Fatalf("answer %+v", a)
	}
	// Still cached 30 s before expiry; replaced within the last 30 s.
	now.Add(int64(869 * time.Second))
	check()
	if n := f.tokens.Load(); n != 1 {
		t.Fatalf("token replaced too early (%d)", n)
	}
	now.Add(int64(2 * time.Second))
	check()
	if n := f.tokens.Load(); n != 2 {
		t.Fatalf("token not replaced before expiry (%d)", n)
	}
	// A token the server refuses is replaced once, and the call succeeds.
	f.rejectNext.Store(true)
	check()
	if n := f.tokens.Load(); n != 3 {
		t.Fatalf("a refused token was not replaced (%d)", n)
	}
}

func TestProblemsAreTypedErrors(t *testing.T) {
	t.Parallel()
	_, ts := newFake(t)
	c, _ := New(ts.URL, WithClientSecret("bank", "s3cret"), WithTimeout(100*time.Millisecond))
	ctx := context.Background()
	_, err := c.Check(ctx, CheckRequest{Subject: Subject{ID: "bad"}, Action: "bank_credit"})
	var e *Error
	if !errors.As(err, &e) || e.Status != 400 || e.Code != "invalid_subject" || e.RequestID != "req-1" || !IsCode(err, "invalid_subject") {
		t.Fatalf("refusal: %#v", err)
	}
	if err.Error() != "400 invalid_subject: check character" {
		t.Fatalf("message %q", err)
	}
	// Wrong secret: the token endpoint's problem, without the secret.
	bad, _ := New(ts.URL, WithClientSecret("bank", "wrong-secret"))
	_, err = bad.Check(ctx, CheckRequest{Subject: Subject{ID: "x"}, Action: "a"})
	if !IsCode(err, "invalid_client") || strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("bad secret: %v", err)
	}
	// An answer that is not a problem still has a status and a code.
	err = c.DoPublic(ctx, http.MethodGet, "/teapot", nil)
	if !errors.As(err, &e) || e.Status != http.StatusTeapot || e.Code != "i'm_a_teapot" {
		t.Fatalf("non-problem: %#v", err)
	}
	// Timeouts.
	if err := c.DoPublic(ctx, http.MethodGet, "/slow", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow answer: %v", err)
	}
	// No credential.
	anon, _ := New(ts.URL)
	if _, err := anon.Check(ctx, CheckRequest{}); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("anonymous check: %v", err)
	}
	for _, u := range []string{"", "localhost:8080", "ftp://x", "http://", "http://h/?q=1"} {
		if _, err := New(u); !errors.Is(err, ErrInvalidURL) {
			t.Errorf("New(%q): %v", u, err)
		}
	}
}

func TestPrivateKeyJWT(t *testing.T) {
	t.Parallel()
	f, ts := newFake(t)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	f.pub = pub
	c, _ := New(ts.URL, WithPrivateKeyJWT("bank", "k1", priv))
	if _, err := c.Check(context.Background(), CheckRequest{Subject: Subject{ID: "x"}, Action: "a"}); err != nil {
		t.Fatal(err)
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	c, _ = New(ts.URL, WithPrivateKeyJWT("bank", "k1", other))
	if _, err := c.Check(context.Background(), CheckRequest{}); !IsCode(err, "invalid_client") {
		t.Fatalf("another key: %v", err)
	}
}

// TestOverloadRetries: with WithOverloadRetries(n), a check refused 503
// overloaded is sent again after each Retry-After (1 s, then 2 s here,
// each with up to a half more at random),
// at most n times; past them the refusal is returned with its
// RetryAfter. Without the option, and for a 503 of another code, the
// refusal comes back at once. A wait ends with the context.
func TestOverloadRetries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	req := CheckRequest{Subject: Subject{ID: "91350100M000100Y43"}, Action: "bank_credit"}
	newClient := func(url string, retries int) (*Client, *[]time.Duration) {
		var waits []time.Duration
		c, err := New(url, WithClientSecret("bank", "s3cret"), WithOverloadRetries(retries),
			withSleep(func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }))
		if err != nil {
			t.Fatal(err)
		}
		return c, &waits
	}

	f, ts := newFake(t)
	f.shed.Store(2)
	c, waits := newClient(ts.URL, 2)
	if _, err := c.Check(ctx, req); err != nil {
		t.Fatalf("two refusals, two retries: %v", err)
	}
	if n := f.checks.Load(); n != 3 || len(*waits) != 2 || !within((*waits)[0], time.Second) || !within((*waits)[1], 2*time.Second) {
		t.Fatalf("%d checks sent, waits %v; want 3 and [1s 2s], each with up to half more", n, *waits)
	}

	f, ts = newFake(t)
	f.shed.Store(2)
	c, waits = newClient(ts.URL, 1)
	_, err := c.Check(ctx, req)
	var e *Error
	if !errors.As(err, &e) || e.Code != "overloaded" || e.RetryAfter != 2*time.Second || f.checks.Load() != 2 || len(*waits) != 1 {
		t.Fatalf("two refusals, one retry: %v (%d checks sent, waits %v)", err, f.checks.Load(), *waits)
	}

	f, ts = newFake(t)
	f.shed.Store(1)
	c, waits = newClient(ts.URL, 0)
	if _, err := c.Check(ctx, req); !IsCode(err, "overloaded") || f.checks.Load() != 1 || len(*waits) != 0 {
		t.Fatalf("no retries: %v (%d checks sent, waits %v)", err, f.checks.Load(), *waits)
	}

	f, ts = newFake(t)
	f.shed.Store(1)
	f.shedCode = "evidence_unavailable"
	c, waits = newClient(ts.URL, 3)
	if _, err := c.Check(ctx, req); !IsCode(err, "evidence_unavailable") || f.checks.Load() != 1 || len(*waits) != 0 {
		t.Fatalf("another 503: %v (%d checks sent, waits %v)", err, f.checks.Load(), *waits)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := sleepCtx(cancelled, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("a wait in a cancelled context: %v", err)
	}
	if w0, wh := OverloadWait(0), OverloadWait(time.Hour); !within(w0, time.Second) || !within(wh, maxOverloadWait) {
		t.Fatalf("OverloadWait: %v, %v; want 1s and a minute, each with up to half more", w0, wh)
	}
	// The waits of callers refused together spread over the half: ten
	// in a row all the same would mean no jitter (odds about 1e-80).
	seen := map[time.Duration]bool{}
	for range 10 {
		seen[OverloadWait(time.Second)] = true
	}
	if len(seen) < 2 {
		t.Errorf("ten waits after Retry-After 1s all %v: no jitter", seen)
	}
}

// within reports whether w is d plus up to a half of d (OverloadWait).
func within(w, d time.Duration) bool { return w >= d && w <= d+d/2 }
