package service_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/sqlitetest"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// Idempotency-Key on POST /v1/checks: a partner retrying a check whose
// answer it lost, with the same key, gets the check recorded first, and
// nothing new is recorded (a retry used to record a second check, which
// counted toward the feedback expected of a partner that could not name
// it).

// eachReopenedStore runs fn on SQLite and PostgreSQL with open, which
// opens the same database again each time it is called (a restart).
func eachReopenedStore(t *testing.T, fn func(t *testing.T, open func() testStore)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		dir := sqlitetest.Dir(t)
		fn(t, func() testStore {
			st, err := sqlite.Open(t.Context(), dir)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		})
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		url, _ := testenv.Postgres(t)
		schema := testenv.FreshSchema(t, "credgate_test")
		fn(t, func() testStore {
			st, err := postgres.Open(t.Context(), url, postgres.WithSchema(schema), postgres.WithMaxConns(4))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		})
	})
}

// idemWorld is a checker over a store, with a clock the test moves.
type idemWorld struct {
	t       *testing.T
	store   testStore
	app     *evidence.Appender
	checker *service.Checker
	now     *atomic.Int64 // unix nanoseconds
}

func newIdemWorld(t *testing.T, st testStore, now *atomic.Int64) *idemWorld {
	t.Helper()
	cat, err := policy.BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	app := evidence.NewAppender(st)
	t.Cleanup(app.Close)
	clock := func() time.Time { return time.Unix(0, now.Load()).UTC() }
	return &idemWorld{t: t, store: st, app: app, now: now,
		checker: service.NewChecker(cat, st, app, st, service.WithClock(clock))}
}

// idemClock is a clock for newIdemWorld, at 2026-12-01 09:00 UTC.
func idemClock() *atomic.Int64 {
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC).UnixNano())
	return &now
}

// restart closes w's appender and store and returns a world over the
// store open opens again, with a new checker on the same clock.
func (w *idemWorld) restart(open func() testStore) *idemWorld {
	w.t.Helper()
	w.app.Close()
	w.store.Close()
	return newIdemWorld(w.t, open(), w.now)
}

// wantCheckRecords fails unless the log holds want check records.
func (w *idemWorld) wantCheckRecords(want int, after string) {
	w.t.Helper()
	if n := w.checkRecords(); n != want {
		w.t.Fatalf("%d check records after %s, want %d", n, after, want)
	}
}

// checkRecords counts the log's check records.
func (w *idemWorld) checkRecords() int {
	w.t.Helper()
	h, err := w.store.TreeHead(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	recs, err := w.store.RecordsBetween(context.Background(), 0, h.Size+1000)
	if err != nil {
		w.t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Kind == evidence.KindCheck {
			n++
		}
	}
	return n
}

var idemCaller = service.Caller{ClientID: "cg_idem_partner", Role: service.RolePartner, Actions: []string{"bank_credit", "public_tendering"}}

func idemRequest(key string) service.CheckRequest {
	return service.CheckRequest{Subject: "91350100M000100Y43", Action: "bank_credit", Reference: "LOAN-1", IdempotencyKey: key}
}

func answerBytes(t *testing.T, a service.CheckAnswer) []byte {
	t.Helper()
	b, err := a.JSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIdempotencyKeyReplaysTheFirstCheck(t *testing.T) {
	eachReopenedStore(t, func(t *testing.T, open func() testStore) {
		ctx := context.Background()
		now := idemClock()
		w := newIdemWorld(t, open(), now)

		first, err := w.checker.Check(ctx, idemCaller, idemRequest("key-1"))
		if err != nil {
			t.Fatal(err)
		}
		if first.Replayed() || first.IdempotencyKey != "key-1" {
			t.Fatalf("first answer: replayed %v, key %q", first.Replayed(), first.IdempotencyKey)
		}
		want := answerBytes(t, first)
		if !bytes.Contains(want, []byte(`"idempotency_key":"key-1"`)) {
			t.Fatalf("the answer does not hold its key: %s", want)
		}
		w.wantCheckRecords(1, "one check")

		// The retry, a minute later: the same check, byte for byte.
		now.Add(int64(time.Minute))
		again, err := w.checker.Check(ctx, idemCaller, idemRequest("key-1"))
		if err != nil {
			t.Fatal(err)
		}
		if !again.Replayed() || again.CheckID != first.CheckID {
			t.Fatalf("retry: replayed %v, check %s, want %s", again.Replayed(), again.CheckID, first.CheckID)
		}
		if got := answerBytes(t, again); !bytes.Equal(got, want) {
			t.Fatalf("replayed answer differs:\n got %s\nwant %s", got, want)
		}
		w.wantCheckRecords(1, "a replay")

		// The same key with another request: refused, nothing recorded.
		other := idemRequest("key-1")
		other.Reference = "LOAN-2"
		if _, err := w.checker.Check(ctx, idemCaller, other); !errors.Is(err, service.ErrIdempotencyKeyReused) {
			t.Fatalf("another reference under the key: %v, want ErrIdempotencyKeyReused", err)
		}
		other = idemRequest("key-1")
		other.Action = "public_tendering"
		if _, err := w.checker.Check(ctx, idemCaller, other); !errors.Is(err, service.ErrIdempotencyKeyReused) {
			t.Fatalf("another action under the key: %v, want ErrIdempotencyKeyReused", err)
		}
		w.wantCheckRecords(1, "refusals")

		// The subject as sent may differ in form, not in identity.
		lower := idemRequest("key-1")
		lower.Subject = "91350100m000100y43"
		if a, err := w.checker.Check(ctx, idemCaller, lower); err != nil || a.CheckID != first.CheckID {
			t.Fatalf("the subject in lower case: %v, check %s", err, a.CheckID)
		}

		// Another partner's same key is another key.
		p2 := idemCaller
		p2.ClientID = "cg_idem_other"
		if a, err := w.checker.Check(ctx, p2, idemRequest("key-1")); err != nil || a.Replayed() || a.CheckID == first.CheckID {
			t.Fatalf("another partner's key: %v, replayed %v", err, a.Replayed())
		}

		// Keyless checks are unchanged: each is a check, without a key.
		for range 2 {
			a, err := w.checker.Check(ctx, idemCaller, idemRequest(""))
			if err != nil {
				t.Fatal(err)
			}
			if a.Replayed() || bytes.Contains(answerBytes(t, a), []byte("idempotency_key")) {
				t.Fatalf("a keyless check: replayed %v, %s", a.Replayed(), answerBytes(t, a))
			}
		}
		w.wantCheckRecords(4, "key-1, the other partner's and two keyless")

		// A restart: the store reopened, a new checker; the key still replays.
		w = w.restart(open)
		again, err = w.checker.Check(ctx, idemCaller, idemRequest("key-1"))
		if err != nil {
			t.Fatal(err)
		}
		if !again.Replayed() || !bytes.Equal(answerBytes(t, again), want) {
			t.Fatalf("after a restart: replayed %v\n got %s\nwant %s", again.Replayed(), answerBytes(t, again), want)
		}

		// 24 hours after the first check the key records a new one.
		now.Store(first.CheckedAt.Add(service.IdempotencyKeyLifetime - time.Second).UnixNano())
		if a, err := w.checker.Check(ctx, idemCaller, idemRequest("key-1")); err != nil || a.CheckID != first.CheckID {
			t.Fatalf("just within 24 hours: %v, check %s", err, a.CheckID)
		}
		now.Store(first.CheckedAt.Add(service.IdempotencyKeyLifetime + time.Second).UnixNano())
		late, err := w.checker.Check(ctx, idemCaller, idemRequest("key-1"))
		if err != nil {
			t.Fatal(err)
		}
		if late.Replayed() || late.CheckID == first.CheckID {
			t.Fatalf("after 24 hours: replayed %v, check %s", late.Replayed(), late.CheckID)
		}
		w.wantCheckRecords(5, "the renewed key")
		// … which the key replays from then on, another request or not.
		now.Add(int64(time.Hour))
		if a, err := w.checker.Check(ctx, idemCaller, idemRequest("key-1")); err != nil || a.CheckID != late.CheckID {
			t.Fatalf("the renewed key: %v, check %s, want %s", err, a.CheckID, late.CheckID)
		}
	})
}

func TestIdempotencyKeyConcurrentRetriesRecordOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, st testStore) {
		w := newIdemWorld(t, st, idemClock())
		const n = 8
		ids := make([]string, n)
		bodies := make([][]byte, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				a, err := w.checker.Check(context.Background(), idemCaller, idemRequest("concurrent"))
				ids[i], errs[i] = a.CheckID, err
				if err == nil {
					bodies[i], errs[i] = a.JSON()
				}
			})
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if ids[i] != ids[0] || !bytes.Equal(bodies[i], bodies[0]) {
				t.Fatalf("request %d answered check %s, request 0 %s", i, ids[i], ids[0])
			}
		}
		w.wantCheckRecords(1, fmt.Sprintf("%d concurrent requests with one key", n))
	})
}

func TestIdempotencyKeyMalformed(t *testing.T) {
	for _, key := range []string{string(make([]byte, 256)), "tab\tkey", "é", string(bytes.Repeat([]byte("k"), 256))} {
		if err := service.ValidIdempotencyKey(key); !errors.Is(err, service.ErrInvalidIdempotencyKey) {
			t.Errorf("key %q: %v, want ErrInvalidIdempotencyKey", key, err)
		}
	}
	for _, key := range []string{"k", " ~!\"#", string(bytes.Repeat([]byte("k"), 255))} {
		if err := service.ValidIdempotencyKey(key); err != nil {
			t.Errorf("key %q: %v", key, err)
		}
	}
}
