package sqlitetest

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/credgate/credgate/adapters/sqlite"
)

// schema lists what the database of the store in dir holds: every table,
// index, trigger and view with its SQL, and the migrations goose recorded.
func schema(t *testing.T, dir string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.FileName)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out []string
	for _, q := range []string{
		`SELECT type || ' ' || name || ': ' || coalesce(sql, '') FROM sqlite_master ORDER BY type, name`,
		`SELECT 'migration ' || version_id || ' ' || is_applied FROM goose_db_version ORDER BY version_id`,
	} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestSeededStoreIsAMigratedStore(t *testing.T) {
	ctx := context.Background()
	fresh, seeded := t.TempDir(), filepath.Join(t.TempDir(), "data")
	Seed(t, seeded)
	for _, dir := range []string{fresh, seeded} {
		st, err := sqlite.Open(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
	want, got := schema(t, fresh), schema(t, seeded)
	if len(want) < 20 {
		t.Fatalf("a migrated store holds only %d objects and migrations: %q", len(want), want)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the seeded store's schema differs from a store migrated anew:\ngot  %q\nwant %q", got, want)
	}

	// A second seed has the same schema, and seeding never lands on an
	// existing store.
	again := t.TempDir()
	Seed(t, again)
	if g := schema(t, again); !slices.Equal(g, want) {
		t.Fatalf("a second seed differs: %q", g)
	}
	if err := copyStore(seeded, seeded); err == nil {
		t.Fatal("seeding over an existing store succeeded")
	}
}

func TestDigestNamesTheMigrations(t *testing.T) {
	base := fstest.MapFS{
		"0001_init.sql": {Data: []byte("CREATE TABLE a (x);")},
		"0002_more.sql": {Data: []byte("CREATE TABLE b (y);")},
	}
	d := func(fsys fstest.MapFS, lib string) string {
		t.Helper()
		s, err := digest(fsys, lib)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ref := d(base, "v1")
	if d(base, "v1") != ref {
		t.Fatal("the digest of the same migrations differs")
	}
	edited := fstest.MapFS{"0001_init.sql": base["0001_init.sql"], "0002_more.sql": {Data: []byte("CREATE TABLE b (z);")}}
	added := fstest.MapFS{"0001_init.sql": base["0001_init.sql"], "0002_more.sql": base["0002_more.sql"],
		"0003_new.sql": {Data: []byte("")}}
	renamed := fstest.MapFS{"0001_init.sql": base["0001_init.sql"], "0003_more.sql": base["0002_more.sql"]}
	for name, other := range map[string]string{
		"an edited migration": d(edited, "v1"), "an added one": d(added, "v1"),
		"a renamed one": d(renamed, "v1"), "another SQLite engine": d(base, "v2"),
	} {
		if other == ref {
			t.Errorf("%s keeps the digest", name)
		}
	}
}

// TestTemplateBuiltWholeByConcurrentSeeds: processes seeding at once on a
// new machine each build a template aside and rename it into place; they
// all get the one that landed, and no half-built directory is left.
func TestTemplateBuiltWholeByConcurrentSeeds(t *testing.T) {
	root := t.TempDir()
	t.Setenv("TMPDIR", root)
	const n = 4
	got := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i], errs[i] = template(t.Context()) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if got[i] != got[0] {
			t.Fatalf("seeds got %q and %q", got[0], got[i])
		}
	}
	left, err := os.ReadDir(filepath.Join(root, "credgate-sqlitetest"))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || filepath.Join(root, "credgate-sqlitetest", left[0].Name()) != got[0] {
		t.Fatalf("the template's directory holds %v, want only %s", left, got[0])
	}
	dir := t.TempDir()
	if err := copyStore(got[0], dir); err != nil {
		t.Fatal(err)
	}
	if g, want := schema(t, dir), schema(t, got[0]); len(g) < 20 || !slices.Equal(g, want) {
		t.Fatalf("a copy of the template holds %d objects, the template %d", len(g), len(want))
	}
}
