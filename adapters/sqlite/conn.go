package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/credgate/credgate/adapters/internal/sqlcommon"
)

// dialect is SQLite's part of the shared store logic.
var dialect = sqlcommon.Dialect{
	Name:     "sqlite",
	MapErr:   mapErr,
	SweepKey: 1,
	// Migration 0013 dropped the row triggers that derived them.
	DeriveChecks: true,
	// Binding $N looks its name up in a list, once per parameter.
	AnonymousParams: true,
	// Migration 0014 keys check_index by idx; a check's id is its record's.
	CheckByID: func(p string) string {
		return `c.idx = (SELECT e.idx FROM evidence e WHERE e.id = ` + p + `) AND c.check_id = ` + p
	},
	JSONValues: func(p string) string {
		return `json_each(` + p + `)`
	},
	// Migration 0015 keys evidence_nodes by the order in which nodes
	// complete (sqlcommon.NodePos): one rowid probe each.
	NodesByPosition: true,
	NodesQuery: func(ids []sqlcommon.NodeKey) (string, []any) {
		var q strings.Builder
		q.WriteString(`SELECT level, idx, hash FROM evidence_nodes WHERE pos IN (`)
		args := make([]any, 0, len(ids))
		for i, id := range ids {
			if i > 0 {
				q.WriteString(",")
			}
			q.WriteString("?")
			args = append(args, sqlcommon.NodePos(id.Level, id.Index))
		}
		q.WriteString(")")
		return q.String(), args
	},
	// The candidates come from two indexed lookups; each one's version is
	// found through (id, recorded_at, version).
	AsOfSQL: `SELECT ` + sqlcommon.VersionColumns + ` FROM (
		    SELECT id FROM entry_versions WHERE subject = $1
		    UNION
		    SELECT entry_id FROM entry_version_persons WHERE person_id = $1) c
		JOIN entry_versions v ON v.id = c.id AND v.version = (
		    SELECT max(w.version) FROM entry_versions w WHERE w.id = c.id AND w.recorded_at <= $2)
		ORDER BY v.id`,
}

// affectingSQL is the query behind EntriesAffecting (its plan is tested).
const affectingSQL = sqlcommon.AffectingSQL

// db is the shared logic's view of the two pools: reads on the read-only
// pool, writes (and transactions) on the one write connection. It stores
// times as INTEGER microseconds since the Unix epoch and returns them in
// UTC.
type db struct {
	r, w *sql.DB
	// prepared holds statements prepared once on the write connection
	// (the evidence inserts), keyed by text.
	prepared *preparedStmts
	ckpt     *checkpointer // told of every commit; nil: none
}

// preparedStmts keeps statements of the write connection prepared for
// good, keyed by text: the evidence inserts, whose compilation includes the
// triggers on evidence. Each is prepared the first time it is used, after
// the commit of the transaction that used it (compiled for that
// transaction alone until then), not at Open: a store that never appends
// does not pay for them (they were half of an Open of a migrated store,
// 6 of 11 ms, and three quarters of it under the race detector, which
// every store a test opens pays).
type preparedStmts struct {
	mu      sync.RWMutex
	m       map[string]*sql.Stmt // prepared on the write pool
	want    map[string]bool      // texts worth keeping
	pending map[string]bool      // wanted, used, not prepared yet
	closed  bool
}

func newPreparedStmts() *preparedStmts {
	return &preparedStmts{m: map[string]*sql.Stmt{}, want: map[string]bool{}, pending: map[string]bool{}}
}

// keep names texts worth keeping prepared once used.
func (p *preparedStmts) keep(texts []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, q := range texts {
		p.want[q] = true
	}
}

// get returns q's kept statement, or nil; a wanted q without one is
// prepared at the next fill.
func (p *preparedStmts) get(q string) *sql.Stmt {
	if p == nil {
		return nil
	}
	p.mu.RLock()
	st, want := p.m[q], p.want[q]
	p.mu.RUnlock()
	if st == nil && want {
		p.mu.Lock()
		if p.m[q] == nil {
			p.pending[q] = true
		}
		p.mu.Unlock()
	}
	return st
}

// fill prepares on w the wanted texts used since the last fill. It runs
// after a commit, when the one write connection is free; a text that fails
// to prepare stays pending (its transactions compile it, as before). The
// lock is not held while preparing: a transaction holding the connection
// may be waiting in get.
func (p *preparedStmts) fill(ctx context.Context, w *sql.DB) {
	if p == nil {
		return
	}
	p.mu.RLock()
	if len(p.pending) == 0 { // every commit after the first few
		p.mu.RUnlock()
		return
	}
	texts := make([]string, 0, len(p.pending))
	for q := range p.pending {
		texts = append(texts, q)
	}
	p.mu.RUnlock()
	for _, q := range texts {
		st, err := w.PrepareContext(ctx, q)
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.closed || p.m[q] != nil {
			st.Close() // closed meanwhile, or another fill's
		} else {
			p.m[q] = st
		}
		delete(p.pending, q)
		p.mu.Unlock()
	}
}

func (p *preparedStmts) close() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	var errs []error
	for _, st := range p.m {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

var (
	_ sqlcommon.DB = db{}
	_ sqlcommon.Tx = sqlTx{}
)

func (d db) Query(ctx context.Context, q string, args ...any) (sqlcommon.Rows, error) {
	rows, err := d.r.QueryContext(ctx, q, toArgs(args)...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

func (d db) QueryRow(ctx context.Context, q string, args ...any) sqlcommon.Row {
	return sqlRow{d.r.QueryRowContext(ctx, q, toArgs(args)...)}
}

func (d db) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	n, err := execAffected(d.w.ExecContext(ctx, q, toArgs(args)...))
	d.ckpt.committed()
	return n, err
}

// InTx runs fn in a transaction of the write connection, which begins
// IMMEDIATE: it holds the database's write lock from the start.
func (d db) InTx(ctx context.Context, fn func(sqlcommon.Tx) error) error {
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(sqlTx{tx, d.prepared}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return mapErr(err)
	}
	d.ckpt.committed()
	d.prepared.fill(ctx, d.w)
	return nil
}

type sqlTx struct {
	tx       *sql.Tx
	prepared *preparedStmts
}

func (t sqlTx) Query(ctx context.Context, q string, args ...any) (sqlcommon.Rows, error) {
	rows, err := t.tx.QueryContext(ctx, q, toArgs(args)...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

func (t sqlTx) QueryRow(ctx context.Context, q string, args ...any) sqlcommon.Row {
	return sqlRow{t.tx.QueryRowContext(ctx, q, toArgs(args)...)}
}

func (t sqlTx) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	return execAffected(t.tx.ExecContext(ctx, q, toArgs(args)...))
}

// ExecBatch runs the statements one by one, each distinct text prepared
// once: SQLite is in process, so there is no round trip to save. A text
// kept prepared (the evidence inserts) is not compiled again: compiling
// an evidence INSERT compiles the triggers on evidence into it.
func (t sqlTx) ExecBatch(ctx context.Context, stmts []sqlcommon.Stmt) (int, error) {
	prepared := map[string]*sql.Stmt{}
	defer func() {
		for _, st := range prepared {
			st.Close()
		}
	}()
	for i, s := range stmts {
		st, ok := prepared[s.SQL]
		if !ok {
			if kept := t.prepared.get(s.SQL); kept != nil {
				st = t.tx.StmtContext(ctx, kept)
			} else {
				var err error
				if st, err = t.tx.PrepareContext(ctx, s.SQL); err != nil {
					return i, err
				}
			}
			prepared[s.SQL] = st
		}
		if _, err := st.ExecContext(ctx, toArgs(s.Args)...); err != nil {
			return i, err
		}
	}
	return len(stmts), nil
}

func execAffected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// toArgs stores times as microseconds; a nil *time.Time is NULL.
func toArgs(args []any) []any {
	out, copied := args, false
	for i, a := range args {
		var v any
		switch t := a.(type) {
		case time.Time:
			v = t.UnixMicro()
		case *time.Time:
			if t != nil {
				v = t.UnixMicro()
			}
		default:
			continue
		}
		if !copied {
			out, copied = append([]any(nil), args...), true
		}
		out[i] = v
	}
	return out
}

type sqlRow struct{ row *sql.Row }

func (r sqlRow) Scan(dest ...any) error { return scanTimes(r.row.Scan, dest) }

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Scan(dest ...any) error { return scanTimes(r.Rows.Scan, dest) }

// scanTimes scans stored microseconds into *time.Time (and NULL or
// microseconds into **time.Time) destinations.
func scanTimes(scan func(...any) error, dest []any) error {
	n := 0
	for _, x := range dest {
		switch x.(type) {
		case *time.Time, **time.Time:
			n++
		}
	}
	if n == 0 {
		return scan(dest...)
	}
	// One allocation for the stand-ins, one for the destinations.
	vals := make([]sql.NullInt64, n)
	d := append([]any(nil), dest...)
	k := 0
	for i, x := range dest {
		switch x.(type) {
		case *time.Time, **time.Time:
			d[i] = &vals[k]
			k++
		}
	}
	if err := scan(d...); err != nil {
		return err
	}
	k = 0
	for _, x := range dest {
		switch p := x.(type) {
		case *time.Time:
			*p = time.Time{}
			if vals[k].Valid {
				*p = fromMicros(vals[k].Int64)
			}
			k++
		case **time.Time:
			*p = nil
			if vals[k].Valid {
				t := fromMicros(vals[k].Int64)
				*p = &t
			}
			k++
		}
	}
	return nil
}
