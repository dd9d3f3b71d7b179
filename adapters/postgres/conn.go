package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/credgate/credgate/adapters/internal/sqlcommon"
)

// dialect is PostgreSQL's part of the shared store logic.
var dialect = sqlcommon.Dialect{
	Name:      "postgres",
	MapErr:    mapErr,
	ForUpdate: ` FOR UPDATE`,
	SweepKey:  true,
	JSONValues: func(p string) string {
		return `jsonb_array_elements_text(` + p + `::text::jsonb) AS j(value)`
	},
	EventLock:  `SELECT pg_advisory_xact_lock(7243850151)`,
	AfterLoad:  []string{`ANALYZE entries`, `ANALYZE entry_persons`},
	SkipLocked: ` FOR UPDATE SKIP LOCKED`,
	// Migration 0018 keys check_index by idx; a check's id is its record's.
	CheckByID: func(p string) string {
		return `c.idx = (SELECT e.idx FROM evidence e WHERE e.id = ` + p + `) AND c.check_id = ` + p
	},
	// The subjects of one change are a few: unnest of an array that is not
	// a constant is guessed at 10 elements, jsonb_array_elements_text at 100.
	FewValues: func(p string) string {
		return `unnest(ARRAY(SELECT jsonb_array_elements_text(` + p + `::text::jsonb))) AS j(value)`
	},
	// A subquery with DISTINCT is not flattened into a join: one probe of
	// check_index_subject per subject and action, whatever the planner
	// guesses of their number and of the window's checks.
	ChecksOfAction: `CROSS JOIN LATERAL (SELECT DISTINCT c.partner FROM check_index c
		WHERE c.subject = a.subject AND c.action = a.action AND c.checked_at >= $2) c`,
	// Without autovacuum (or before it gets round to the table), BRIN ranges
	// filled since the last summary are read whole by every statistics
	// query of a period; the hourly pruning bounds them to an hour of checks.
	AfterPruneSQL: []string{`SELECT brin_summarize_new_values('check_index_time')`},
	NodesQuery: func(ids []sqlcommon.NodeKey) (string, []any) {
		levels := make([]int16, len(ids))
		idxs := make([]int64, len(ids))
		for i, id := range ids {
			levels[i], idxs[i] = int16(id.Level), id.Index
		}
		return `SELECT n.level, n.idx, n.hash
			FROM unnest($1::smallint[], $2::bigint[]) AS want(level, idx)
			JOIN evidence_nodes n ON n.level = want.level AND n.idx = want.idx`, []any{levels, idxs}
	},
	// The candidates come from two indexed lookups; each one's version is
	// one backward probe of the primary key (a lateral join: a DISTINCT ON
	// over the candidates' versions lets the planner scan the history
	// instead).
	AsOfSQL: `SELECT ` + sqlcommon.VersionColumns + ` FROM (
			SELECT id FROM entry_versions WHERE subject = $1
			UNION
			SELECT entry_id FROM entry_version_persons WHERE person_id = $1) c
		CROSS JOIN LATERAL (SELECT * FROM entry_versions w WHERE w.id = c.id AND w.recorded_at <= $2
			ORDER BY w.version DESC LIMIT 1) v
		ORDER BY v.id`,
	// A checkpoint lost in a crash is signed again byte for byte: its
	// insert need not wait for the WAL flush.
	CheckpointPrelude: `SET LOCAL synchronous_commit = off`,
}

// db is the shared logic's view of the pool.
type db struct{ pool *pgxpool.Pool }

var (
	_ sqlcommon.DB = db{}
	_ sqlcommon.Tx = pgTx{}
)

func (d db) Query(ctx context.Context, q string, args ...any) (sqlcommon.Rows, error) {
	rows, err := d.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgRows{rows}, nil
}

func (d db) QueryRow(ctx context.Context, q string, args ...any) sqlcommon.Row {
	return d.pool.QueryRow(ctx, q, args...)
}

func (d db) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := d.pool.Exec(ctx, q, args...)
	return tag.RowsAffected(), err
}

func (d db) InTx(ctx context.Context, fn func(sqlcommon.Tx) error) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error { return fn(pgTx{tx}) })
}

type pgTx struct{ tx pgx.Tx }

func (t pgTx) Query(ctx context.Context, q string, args ...any) (sqlcommon.Rows, error) {
	rows, err := t.tx.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgRows{rows}, nil
}

func (t pgTx) QueryRow(ctx context.Context, q string, args ...any) sqlcommon.Row {
	return t.tx.QueryRow(ctx, q, args...)
}

func (t pgTx) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := t.tx.Exec(ctx, q, args...)
	return tag.RowsAffected(), err
}

// ExecBatch pipelines the statements in one round trip.
func (t pgTx) ExecBatch(ctx context.Context, stmts []sqlcommon.Stmt) (int, error) {
	if len(stmts) == 0 {
		return 0, nil
	}
	b := &pgx.Batch{}
	for _, s := range stmts {
		b.Queue(s.SQL, s.Args...)
	}
	br := t.tx.SendBatch(ctx, b)
	for i := range stmts {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return i, err
		}
	}
	return len(stmts), br.Close()
}

type pgRows struct{ pgx.Rows }

func (r pgRows) Close() error {
	r.Rows.Close()
	return nil
}

var (
	_ sqlcommon.Copier   = db{}
	_ sqlcommon.LoadTxer = db{}
)

// BeginLoadTx opens a bulk load's transaction: the load copies its
// entries straight into entries inside it and commits once the whole file
// is good.
func (d db) BeginLoadTx(ctx context.Context) (sqlcommon.LoadTx, error) {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return loadTx{pgTx{tx}}, nil
}

// loadTx is a bulk load's transaction.
type loadTx struct{ pgTx }

func (t loadTx) CopyFunc(ctx context.Context, table string, columns []string, n int, row func(int) ([]any, error)) (int64, error) {
	return t.tx.CopyFrom(ctx, pgx.Identifier{table}, columns, pgx.CopyFromSlice(n, row))
}

// SkipChangeLog: migration 0014's insert triggers skip subject_changes
// while the setting is on, until the transaction ends.
func (t loadTx) SkipChangeLog(ctx context.Context) error {
	_, err := t.tx.Exec(ctx, `SET LOCAL credgate.skip_subject_changes = 'on'`)
	return err
}

// MarkAllChanged moves the change log's pruned mark past this transaction:
// a cache whose cursor is below it (every cache that read the log before
// this commit) drops everything at its next reading (changes.go).
func (t loadTx) MarkAllChanged(ctx context.Context) error {
	_, err := t.tx.Exec(ctx, `UPDATE subject_changes_pruned
		SET xid = greatest(xid, ((pg_current_xact_id()::text)::numeric + 1)::text::xid8)`)
	return err
}

func (t loadTx) Commit(ctx context.Context) error   { return t.tx.Commit(ctx) }
func (t loadTx) Rollback(ctx context.Context) error { return t.tx.Rollback(ctx) }

// CopyFrom copies rows into table with COPY (bulk loads' staging).
func (d db) CopyFrom(ctx context.Context, table string, columns []string, rows [][]any) (int64, error) {
	return d.pool.CopyFrom(ctx, pgx.Identifier{table}, columns, pgx.CopyFromRows(rows))
}
