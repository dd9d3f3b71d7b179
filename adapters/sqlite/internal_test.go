package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/internal/sqlcommon"
	"github.com/credgate/credgate/adapters/storetest"
	"github.com/credgate/credgate/service"
)

func testPartner(w, i int) service.Partner {
	id := fmt.Sprintf("p-%02d-%02d", w, i)
	return service.Partner{ID: id, ClientID: "client-" + id, Name: id, Role: service.RolePartner,
		SecretHash: "h", Status: service.PartnerActive, CreatedAt: time.Now(), UpdatedAt: time.Now(), Version: 1}
}

// TestPragmas checks that every connection of both pools has the settings
// durability and integrity rely on, not only the first one opened.
func TestPragmas(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTemp(t, WithReadConns(3))
	check := func(name string, db *sql.DB, n int, readOnly bool) {
		// Hold n connections at once so the pool has to open them all.
		conns := make([]*sql.Conn, n)
		for i := range conns {
			c, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			conns[i] = c
		}
		for i, c := range conns {
			for pragma, want := range map[string]string{
				"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1",
				"busy_timeout": "5000", "query_only": map[bool]string{true: "1", false: "0"}[readOnly],
			} {
				var got string
				if err := c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
					t.Fatal(err)
				}
				if !strings.EqualFold(got, want) {
					t.Errorf("%s connection %d: %s = %s, want %s", name, i, pragma, got, want)
				}
			}
		}
	}
	check("write", s.w, 1, false)
	check("read", s.r, 3, true)
	check("checkpoint", s.ckpt.db, 1, false)
	// The writer leaves checkpoints to the checkpointer and keeps its
	// statement journals in memory (2: MEMORY).
	for pragma, want := range map[string]int{"wal_autocheckpoint": 0, "temp_store": 2} {
		var got int
		if err := s.w.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("write connection: %s = %d, want %d", pragma, got, want)
		}
	}
}

// TestEvidenceAppendOnly checks that the schema refuses to delete or
// rewrite evidence, but lets a body be erased.
func TestEvidenceAppendOnly(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTemp(t)
	if _, err := s.w.ExecContext(ctx, `INSERT INTO evidence (idx, id, kind, partner, at, body, salt, hash)
		VALUES (0, 'r1', 'check', 'c', 0, x'00', x'00', zeroblob(32))`); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DELETE FROM evidence`,
		`UPDATE evidence SET idx = 5`,
		`UPDATE evidence SET hash = zeroblob(32)`,
		`UPDATE evidence SET partner = 'other'`,
	} {
		if _, err := s.w.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want append-only refusal", q, err)
		}
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE evidence SET body = x'', salt = x''`); err != nil {
		t.Errorf("erasing a body: %v", err)
	}
}

// TestEvidenceErasureOnly: of body and salt, only erasing both may be
// written (migration 0018).
func TestEvidenceErasureOnly(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	storetest.CheckErasureOnly(t, s, func(idx uint64, body, salt []byte) error {
		_, err := s.w.ExecContext(t.Context(), `UPDATE evidence SET body = ?, salt = ? WHERE idx = ?`, body, salt, int64(idx))
		return err
	})
}

// TestConcurrentWritersAndReaders runs writers and readers together: the
// single write connection must queue writers instead of failing with
// SQLITE_BUSY.
func TestConcurrentWritersAndReaders(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTemp(t)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for w := range 16 {
		wg.Go(func() {
			for i := range 20 {
				p := testPartner(w, i)
				if err := s.InsertPartner(ctx, p); err != nil {
					errs <- err
					return
				}
				if _, err := s.ListPartners(ctx); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all, err := s.ListPartners(context.WithoutCancel(ctx))
	if err != nil || len(all) != 16*20 {
		t.Fatalf("ListPartners: %d partners, %v", len(all), err)
	}
}

// TestEntriesAffectingPlan checks that EntriesAffecting is index lookups,
// not a scan of the entries table.
func TestEntriesAffectingPlan(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	plan := explain(t, s, sqlcommon.Stmt{SQL: affectingSQL, Args: []any{"P1"}})
	joined := strings.Join(plan, "\n")
	for _, want := range []string{"entries_subject", "entry_persons_person"} {
		if !strings.Contains(joined, want) {
			t.Errorf("plan does not use %s:\n%s", want, joined)
		}
	}
	for _, line := range plan {
		if strings.HasPrefix(line, "SCAN ") && !strings.Contains(line, "USING") {
			t.Errorf("plan scans a table:\n%s", joined)
		}
	}
	t.Logf("plan:\n%s", joined)
}

// openTemp opens a store in a directory of the test's own, closed when the
// test ends.
func openTemp(t *testing.T, opts ...Option) *Store {
	t.Helper()
	s, err := Open(t.Context(), t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestEvidenceKeysAppendOnly: a verifier key, once stored, stays, so that
// receipts signed before a rotation stay verifiable from the served list.
func TestEvidenceKeysAppendOnly(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTemp(t)
	if err := s.AddVerifierKey(ctx, "credgate.test/evidence+00000001+AAAA"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DELETE FROM evidence_keys`,
		`UPDATE evidence_keys SET vkey = 'other'`,
		`UPDATE evidence_keys SET added_at = 0`,
	} {
		if _, err := s.w.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want append-only refusal", q, err)
		}
	}
	if err := s.AddVerifierKey(ctx, "credgate.test/evidence+00000001+AAAA"); err != nil {
		t.Fatalf("adding a key again: %v", err)
	}
	if keys, err := s.VerifierKeys(ctx); err != nil || len(keys) != 1 {
		t.Fatalf("keys: %v %v", keys, err)
	}
}
