// Package sqlplans is for the stores' plan tests: it records the statements
// the shared SQL logic runs, and runs every read of the tables derived from
// checks (check_index, check_lists), so that each engine's
// test can EXPLAIN the same statements with its own planner. Those tables
// are written on every check: an index no read needs is only cost, and a
// read that lost its index scans every check.
package sqlplans

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/internal/sqlcommon"
	"github.com/credgate/credgate/service"
)

// Recorder is a sqlcommon.DB noting the text and arguments of every
// statement run through it (ExecBatch's are not noted: only appends use it).
type Recorder struct {
	sqlcommon.DB
	mu    sync.Mutex
	stmts []sqlcommon.Stmt
}

var _ sqlcommon.DB = (*Recorder)(nil)

// NewRecorder wraps db.
func NewRecorder(db sqlcommon.DB) *Recorder { return &Recorder{DB: db} }

// Stmts returns the statements noted so far.
func (r *Recorder) Stmts() []sqlcommon.Stmt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sqlcommon.Stmt(nil), r.stmts...)
}

func (r *Recorder) note(q string, args []any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stmts = append(r.stmts, sqlcommon.Stmt{SQL: q, Args: args})
}

// Query notes q and runs it.
func (r *Recorder) Query(ctx context.Context, q string, args ...any) (sqlcommon.Rows, error) {
	r.note(q, args)
	return r.DB.Query(ctx, q, args...)
}

// QueryRow notes q and runs it.
func (r *Recorder) QueryRow(ctx context.Context, q string, args ...any) sqlcommon.Row {
	r.note(q, args)
	return r.DB.QueryRow(ctx, q, args...)
}

// Exec notes q and runs it.
func (r *Recorder) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	r.note(q, args)
	return r.DB.Exec(ctx, q, args...)
}

// InTx runs fn in a transaction whose Exec statements are noted.
func (r *Recorder) InTx(ctx context.Context, fn func(sqlcommon.Tx) error) error {
	return r.DB.InTx(ctx, func(tx sqlcommon.Tx) error { return fn(recordingTx{tx, r}) })
}

type recordingTx struct {
	sqlcommon.Tx
	r *Recorder
}

func (t recordingTx) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	t.r.note(q, args)
	return t.Tx.Exec(ctx, q, args...)
}

// DerivedReads runs through s (a store over a Recorder) every read of the
// derived tables (the push fan-out's Subscribers among them), at now; coverage
// (LastChecks) looks back to since. It returns the statements to EXPLAIN:
// those noted, and the read of the checks LastChecks found by idx, which it
// runs only when it finds one.
func DerivedReads(t *testing.T, s *sqlcommon.Store, rec *Recorder, now, since time.Time) []sqlcommon.Stmt {
	t.Helper()
	ctx := t.Context()
	cutoffs := []service.ActionCutoff{{Actions: []string{"bank_credit", "procurement"}, Before: now}, {Actions: []string{"licence"}, Before: now}}
	// No record "chk-1" is in the log, whatever the index holds.
	if _, err := s.IndexedCheck(ctx, "chk-1"); err == nil {
		t.Fatal("a check found with no record in the log")
	}
	for _, partner := range []string{"", "p1"} {
		if _, err := s.OverdueChecks(ctx, service.OverdueFilter{Cutoffs: cutoffs, Partner: partner, After: -1, Limit: 10}); err != nil {
			t.Fatal(err)
		}
		for _, by := range []service.StatsBy{service.StatsTotal, service.StatsPartner, service.StatsAction, service.StatsList, service.StatsRegion} {
			q := service.StatsQuery{From: now.Add(-time.Hour), To: now, Partner: partner, By: by}
			if _, err := s.CheckStats(ctx, q); err != nil {
				t.Fatal(err)
			}
			if _, err := s.OverdueCounts(ctx, q, cutoffs); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.LastChecks(ctx, partner, []service.CheckProbe{{Subject: "S1", Action: "bank_credit", Since: since, At: now}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Subscribers(ctx, []string{"S1", "S2"}, now.Add(-service.DefaultCheckedWindow)); err != nil {
		t.Fatal(err)
	}
	return append(rec.Stmts(), sqlcommon.Stmt{SQL: `SELECT c.check_id FROM check_index c WHERE c.idx IN ($1, $2)`, Args: []any{int64(1), int64(2)}})
}

// Reset forgets the statements noted so far.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stmts = r.stmts[:0]
}
