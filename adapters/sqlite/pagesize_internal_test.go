package sqlite

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/service"
)

// TestPageSizeOnlyForNewDatabases: a database Open creates gets the page
// size asked for, on the writer and the readers; a database that exists
// keeps the size it was created with (4 096 by default) when opened with
// another, and still takes commits and answers reads; a size SQLite
// refuses fails Open instead of leaving its default in silence.
func TestPageSizeOnlyForNewDatabases(t *testing.T) {
	t.Parallel()
	withPage := func(n int) Option { return func(c *config) { c.pageSize = n } }
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	n := 0
	// use appends two checks on one subject and reads the last one back.
	use := func(t *testing.T, s *Store, wantPage int) {
		t.Helper()
		for kind, db := range map[string]*sql.DB{"writer": s.w, "reader": s.r} {
			var got int
			if err := db.QueryRowContext(t.Context(), `PRAGMA page_size`).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != wantPage {
				t.Errorf("%s: page_size %d, want %d", kind, got, wantPage)
			}
		}
		subject := fmt.Sprintf("91110108MB%08d", n)
		var recs []evidence.Record
		for range 2 {
			recs = append(recs, BenchCheckRecord(t, n, subject, at.Add(time.Duration(n)*time.Second)))
			n++
		}
		if _, err := s.AppendBatch(t.Context(), recs); err != nil {
			t.Fatal(err)
		}
		hits, err := s.LastChecks(t.Context(), "", []service.CheckProbe{{Subject: subject, Action: "government_procurement", At: at.Add(time.Hour), Since: at.Add(-time.Hour)}})
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) != 1 || hits[0].Check == nil || hits[0].Check.CheckID != recs[1].ID {
			t.Fatalf("last check of %s: %+v, want %s", subject, hits, recs[1].ID)
		}
	}
	reopen := func(t *testing.T, dir string, opts ...Option) *Store {
		t.Helper()
		s, err := Open(t.Context(), dir, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	t.Run("new", func(t *testing.T) {
		dir := t.TempDir()
		s := reopen(t, dir, withPage(16384))
		use(t, s, 16384)
		s.Close()
		s = reopen(t, dir, withPage(8192))
		use(t, s, 16384)
		s.Close()
		s = reopen(t, dir)
		defer s.Close()
		use(t, s, 16384)
	})
	t.Run("existing 4096", func(t *testing.T) {
		dir := t.TempDir()
		s := reopen(t, dir)
		use(t, s, 4096)
		s.Close()
		s = reopen(t, dir, withPage(16384))
		defer s.Close()
		use(t, s, 4096)
	})
	t.Run("refused", func(t *testing.T) {
		if s, err := Open(t.Context(), t.TempDir(), withPage(1000)); err == nil {
			s.Close()
			t.Fatal("Open with page size 1000: no error")
		}
	})
}
