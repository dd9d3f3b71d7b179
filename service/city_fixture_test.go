package service_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// cityCatalog is the bundled catalogue with city_safety_blacklist, a
// placed city's list the cross-list and repair tests run on, added: the
// fixture policy's tests run on (its comments say why).
func cityCatalog(t testing.TB) *policy.Catalog {
	t.Helper()
	city, err := os.ReadFile(filepath.Join("..", "policy", "testdata", "city_safety_blacklist.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return testenv.CatalogWith(t, string(city))
}

// citySafetyEntry is safetyEntry on city_safety_blacklist.
func citySafetyEntry(published time.Time, persons ...policy.ResponsiblePerson) service.EntryInput {
	in := safetyEntry(published, persons...)
	in.List = "city_safety_blacklist"
	return in
}

// newCityRevWorld is newRevWorld over cityCatalog.
func newCityRevWorld(t *testing.T, st revStore, start time.Time) *revWorld {
	t.Helper()
	cat := cityCatalog(t)
	app := evidence.NewAppender(st)
	t.Cleanup(app.Close)
	w := &revWorld{clock: testenv.NewClock(start), store: st, audit: &spy{next: app}}
	w.entries = service.NewEntries(st, cat, service.WithEntriesClock(w.clock.Now), service.WithEntriesAudit(service.NewAudit(w.audit)))
	w.lifecycle = service.NewLifecycle(w.entries, st)
	return w
}
