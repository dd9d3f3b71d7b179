package cache

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// TestDatabaseDown cuts the entry database (the real PostgreSQL, behind a
// proxy this test controls) under a checker reading through the tier:
// cached subjects are answered as before while their data is within the
// staleness bound, with data_as_of standing still; past the bound they are
// unverifiable (data_stale), never clear; a subject never cached is an
// error, not an answer. When the database is back, answers are fresh again.
// Evidence goes to a store of its own, which stays up: what happens to
// evidence when its own database is down is the evidence log's business.
func TestDatabaseDown(t *testing.T) {
	t.Parallel()
	schema := testenv.FreshSchema(t, "credgate_cache")
	u, err := url.Parse(testenv.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	px := newProxy(t, u.Host)
	u.Host = px.addr
	through := pgStore(t, u.String(), schema)
	direct := pgStore(t, "", schema)

	const bound = 2 * time.Second
	tier := newTier(t, through, through, WithReconcileInterval(100*time.Millisecond), WithMaxStaleness(bound))
	cat, err := policy.BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	evStore := sqliteStore(t)
	app := evidence.NewAppender(evStore)
	t.Cleanup(func() { app.Close() })
	checker := service.NewChecker(cat, tier, app, evStore, service.WithMaxStaleness(bound))
	caller := service.Caller{ClientID: "admin", Role: service.RoleAdmin}
	check := func(subject string) (service.CheckAnswer, error) {
		return checker.Check(t.Context(), caller, service.CheckRequest{Subject: subject, Action: "government_procurement"})
	}
	mustCheck := func(subject string) service.CheckAnswer {
		t.Helper()
		a, err := check(subject)
		if err != nil {
			t.Fatalf("check: %v", err)
		}
		if a.Receipt == nil {
			t.Fatal("an answer without evidence")
		}
		return a
	}

	listed, clean := testenv.USCC(t, "91110000MA0000021"), testenv.USCC(t, "91110000MA0000022")
	insert(t, direct, blackEntry("e1", listed))
	// The reading that reports the insert drops any copy loaded before it:
	// let it pass before warming the cache.
	if err := tier.ReconcileNow(t.Context()); err != nil {
		t.Fatal(err)
	}
	listedOutcome := mustCheck(listed).Outcome
	if listedOutcome == policy.OutcomeClear || listedOutcome == policy.OutcomeUnverifiable {
		t.Fatalf("a black-listed subject: %s", listedOutcome)
	}
	if a := mustCheck(clean); a.Outcome != policy.OutcomeClear || time.Since(a.DataAsOf) > time.Second {
		t.Fatalf("a clean subject: %s as of %v", a.Outcome, a.DataAsOf)
	}

	px.cut()
	cutAt := time.Now()
	if _, err := check(testenv.USCC(t, "91110000MA0000023")); !errors.Is(err, service.ErrDataUnavailable) {
		t.Fatalf("a subject never cached, database down: %v, want ErrDataUnavailable", err)
	}
	var asOf time.Time
	for time.Since(cutAt) < bound/2 {
		l, c := mustCheck(listed), mustCheck(clean)
		if l.Outcome != listedOutcome || c.Outcome != policy.OutcomeClear {
			t.Fatalf("within the bound, database down: %s and %s, want %s and clear", l.Outcome, c.Outcome, listedOutcome)
		}
		if c.DataAsOf.After(cutAt) {
			t.Fatalf("data_as_of %v is after the database went down at %v", c.DataAsOf, cutAt)
		}
		asOf = c.DataAsOf
		time.Sleep(50 * time.Millisecond)
	}
	waitFor(t, "unverifiable past the bound", 3*bound, func() bool { return mustCheck(clean).Outcome == policy.OutcomeUnverifiable })
	for _, s := range []string{clean, listed} {
		a := mustCheck(s)
		if a.Outcome != policy.OutcomeUnverifiable || a.Unverifiable == nil || a.Unverifiable.Reason != service.UnverifiableDataStale {
			t.Fatalf("past the bound: %s %+v, want unverifiable (data_stale)", a.Outcome, a.Unverifiable)
		}
		if a.DataAsOf.After(asOf) {
			t.Fatalf("data_as_of moved to %v while the database was down", a.DataAsOf)
		}
	}
	if a := mustCheck(listed); len(a.Measures) == 0 {
		t.Fatal("an unverifiable answer should still show the measures the last good data carried")
	}

	px.restore()
	waitFor(t, "fresh answers after the database is back", 10*time.Second, func() bool {
		a := mustCheck(clean)
		return a.Outcome == policy.OutcomeClear && time.Since(a.DataAsOf) < time.Second
	})
	if a := mustCheck(listed); a.Outcome != listedOutcome {
		t.Fatalf("after recovery: %s, want %s", a.Outcome, listedOutcome)
	}
}
