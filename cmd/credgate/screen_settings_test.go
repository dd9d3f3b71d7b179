package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/config"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// screeningStoreOnly is a store seen as a screening store only: no batch
// lookup, so no cache tier is needed.
type screeningStoreOnly struct{ service.ScreeningStore }

// The screening service serve builds keeps its jobs' files in
// store.screenings_dir (the directory replicas share) and refuses a
// partner's job past store.screenings_max_unfinished; unset, the files go
// to <store.data_dir>/screenings.
func TestScreeningsFromSettings(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cat, err := policy.BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	app := evidence.NewAppender(st)
	t.Cleanup(app.Close)
	checker := service.NewChecker(cat, st, app, st)
	admin := service.Caller{ClientID: "admin", Role: service.RoleAdmin}
	file := func() *bytes.Reader {
		return bytes.NewReader(fmt.Appendf(nil, "{\"id\":%q}\n", mustSubject(t, 1)))
	}

	dataDir, shared := t.TempDir(), t.TempDir()
	sc := newScreenings(checker, screeningStoreOnly{st}, nil,
		config.Store{DataDir: dataDir, ScreeningsDir: shared, ScreeningsMaxUnfinished: 1, ScreeningRetention: service.DefaultScreeningRetention}, slog.Default())
	j, err := sc.Submit(ctx, admin, "bank_credit", service.FormatNDJSON, file())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(shared, j.ID, "input")); err != nil {
		t.Fatalf("the job's input is not in store.screenings_dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "screenings")); !os.IsNotExist(err) {
		t.Fatalf("the data dir has screenings: %v", err)
	}
	if _, err := sc.Submit(ctx, admin, "bank_credit", service.FormatNDJSON, file()); !errors.Is(err, service.ErrTooManyScreenings) {
		t.Fatalf("a second unfinished job with store.screenings_max_unfinished 1: %v", err)
	}

	if got := screeningsDir(config.Store{DataDir: dataDir}); got != filepath.Join(dataDir, "screenings") {
		t.Fatalf("the default screenings dir: %s", got)
	}
}
