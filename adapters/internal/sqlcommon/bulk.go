package sqlcommon

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/credgate/credgate/adapters/internal/storeutil"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// Copier bulk-copies rows into a table (PostgreSQL's COPY). A DB that is
// one stages bulk loads with it; the others stage with prepared inserts.
type Copier interface {
	CopyFrom(ctx context.Context, table string, columns []string, rows [][]any) (int64, error)
}

// loadEntryColumns are the staging table's columns: the load, then the
// entry's columns in EntryColumns order.
var loadEntryColumns = []string{"load_id", "id", "subject", "subject_kind", "list", "originating_department",
	"reason", "legal_basis", "evidence_refs", "decided_at", "published_at", "valid_until", "revoked_at",
	"revocation_reason", "objections", "responsible_persons", "created_at", "updated_at", "version", "lifecycle"}

var loadPersonColumns = []string{"load_id", "entry_id", "person_id", "role"}

// LoadTxer is a DB that runs a bulk load in one transaction of its own
// (PostgreSQL): the entries are copied straight into entries inside it, so
// that the database writes each row once, while the file is still being
// read, instead of staging it and moving it again at the end. Readers do
// not see the rows until the commit, and a failure or a crash rolls all of
// them back: all or nothing holds as with staging.
type LoadTxer interface {
	BeginLoadTx(ctx context.Context) (LoadTx, error)
}

// LoadTx is a bulk load's transaction.
type LoadTx interface {
	Tx
	// CopyFunc copies n rows into table with COPY, asking row for each
	// as it streams, so that encoding the rows overlaps the database's
	// work on those already sent. A row's slice may be reused once row is
	// called again.
	CopyFunc(ctx context.Context, table string, columns []string, n int, row func(i int) ([]any, error)) (int64, error)
	// SkipChangeLog stops the transaction's inserts from writing a change
	// row per subject for the caches; MarkAllChanged, before the commit,
	// tells every cache to drop everything instead.
	SkipChangeLog(ctx context.Context) error
	MarkAllChanged(ctx context.Context) error
	// DeferEvents stops the transaction's inserts from writing their push
	// outbox rows as they go: readers of the outbox would walk past every
	// one of them, invisible until the commit, at each reading.
	// WriteDeferredEvents, before the commit, writes the rows of the want
	// entries the transaction inserted (ids from first to last) in one
	// statement, turns the deferral off, and returns how many it wrote.
	DeferEvents(ctx context.Context) error
	WriteDeferredEvents(ctx context.Context, first, last string, want int64) (int64, error)
	// StoredDuplicates waits until no other load's transaction holds the
	// loads' lock, takes it until this transaction ends, and then selects
	// (id, subject, list, originating_department, decided_at, stored id)
	// of the entries this transaction copied, ids from first to last,
	// that repeat an entry it did not insert: the same key, the least such
	// id; by id, at most limit (bulkdups.go).
	StoredDuplicates(ctx context.Context, first, last string, limit int) (Rows, error)
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// changeLogRows is how many entries a load in its own transaction copies
// with a change row per subject; past it, caches are told to drop
// everything. A cache reads at most a page of changes (10 000 by default)
// before it drops everything anyway, so past this size the rows would only
// cost the load time and the change log space.
const changeLogRows = 100_000

// analyzeRows is the smallest load after which Dialect.AfterLoad runs.
const analyzeRows = 10_000

// afterLoad refreshes the planner's statistics after a load of n entries.
// The load is committed by then and a failure here must not report it as
// failed: without fresh statistics lookups are slower, not wrong, until
// autovacuum analyses the table itself. So the error is dropped.
func (s *Store) afterLoad(ctx context.Context, n int64) {
	if n < analyzeRows {
		return
	}
	for _, q := range s.d.AfterLoad {
		if _, err := s.db.Exec(ctx, q); err != nil {
			return
		}
	}
}

// openLoad is a load running in its own transaction.
type openLoad struct {
	mu      sync.Mutex
	tx      LoadTx
	started time.Time
	n       int64
	// first and last are the least and greatest ids copied (byte order).
	first, last string
	err         error // the first failure: the transaction is aborted
	// allChanged: the change log was skipped past changeLogRows.
	allChanged bool
}

// staleLoad is how long a load may stay staged before a later one takes it
// for abandoned (its process crashed) and clears it.
const staleLoad = 24 * time.Hour

var _ service.EntryLoader = (*Store)(nil)

// BeginEntryLoad registers load id, and clears the staged rows of loads
// begun more than a day before now, or committed but not discarded. On a
// LoadTxer it opens the load's transaction instead, and rolls back loads
// of this store begun more than a day before now.
func (s *Store) BeginEntryLoad(ctx context.Context, id string, now time.Time) error {
	stale := []Stmt{
		{`DELETE FROM entry_loads WHERE started_at < $1`, []any{now.Add(-staleLoad)}},
		{`DELETE FROM entry_load_entries WHERE load_id NOT IN (SELECT id FROM entry_loads)`, nil},
		{`DELETE FROM entry_load_persons WHERE load_id NOT IN (SELECT id FROM entry_loads)`, nil},
	}
	if ltx, ok := s.db.(LoadTxer); ok {
		// Staging rows a load of an earlier version left are cleared too.
		if err := s.db.InTx(ctx, func(tx Tx) error {
			_, err := tx.ExecBatch(ctx, stale)
			return s.d.MapErr(err)
		}); err != nil {
			return s.errf("begin entry load: %w", err)
		}
		s.loads.Range(func(k, v any) bool {
			if v.(*openLoad).started.Before(now.Add(-staleLoad)) {
				if l, ok := s.loads.LoadAndDelete(k); ok {
					l.(*openLoad).rollback(ctx)
				}
			}
			return true
		})
		tx, err := ltx.BeginLoadTx(ctx)
		if err != nil {
			return s.errf("begin entry load: %w", err)
		}
		if err := tx.DeferEvents(ctx); err != nil {
			_ = tx.Rollback(ctx)
			return s.errf("begin entry load: %w", err)
		}
		if _, dup := s.loads.LoadOrStore(id, &openLoad{tx: tx, started: now}); dup {
			_ = tx.Rollback(ctx)
			return s.errf("begin entry load %q: %w", id, service.ErrConflict)
		}
		return nil
	}
	err := s.db.InTx(ctx, func(tx Tx) error {
		_, err := tx.ExecBatch(ctx, append(stale, Stmt{`INSERT INTO entry_loads (id, started_at) VALUES ($1, $2)`, []any{id, now}}))
		return s.d.MapErr(err)
	})
	if err != nil {
		return s.errf("begin entry load: %w", err)
	}
	return nil
}

// StageEntries writes entries and their person links into the load: on a
// LoadTxer straight into entries within the load's transaction (COPY),
// otherwise into its staging rows, with COPY where the DB is a Copier and
// prepared inserts in one transaction elsewhere (SQLite). Nothing is
// visible to readers of entries.
func (s *Store) StageEntries(ctx context.Context, id string, entries []policy.Entry) error {
	if v, ok := s.loads.Load(id); ok {
		return v.(*openLoad).copyIn(ctx, s, entries)
	}
	rows := make([][]any, 0, len(entries))
	var links [][]any
	for _, e := range entries {
		e = storeutil.NormalizeEntry(e)
		j, err := storeutil.EncodeEntry(e)
		if err != nil {
			return s.errf("stage entry %q: %w", e.ID, err)
		}
		rows = append(rows, []any{id, e.ID, e.Subject.Value, string(e.Subject.Kind), e.List,
			e.OriginatingDepartment, e.Reason, e.LegalBasis, string(j.EvidenceRefs),
			e.DecidedAt, e.PublishedAt, e.ValidUntil, e.RevokedAt, e.RevocationReason,
			string(j.Objections), string(j.ResponsiblePersons), e.CreatedAt, e.UpdatedAt, e.Version,
			string(j.Lifecycle)})
		for _, l := range storeutil.PersonLinks(e) {
			links = append(links, []any{id, e.ID, l.PersonID, string(l.Role)})
		}
	}
	if _, ok := s.db.(LoadTxer); ok {
		return fmt.Errorf("stage entries: load %q: %w", id, service.ErrNotFound)
	}
	if c, ok := s.db.(Copier); ok {
		if _, err := c.CopyFrom(ctx, "entry_load_entries", loadEntryColumns, rows); err != nil {
			return s.errf("stage entries: %w", err)
		}
		if len(links) > 0 {
			if _, err := c.CopyFrom(ctx, "entry_load_persons", loadPersonColumns, links); err != nil {
				return s.errf("stage person links: %w", err)
			}
		}
		return nil
	}
	stmts := make([]Stmt, 0, len(rows)+len(links))
	for _, r := range rows {
		stmts = append(stmts, Stmt{insertLoadEntrySQL, r})
	}
	for _, l := range links {
		stmts = append(stmts, Stmt{insertLoadPersonSQL, l})
	}
	if err := s.db.InTx(ctx, func(tx Tx) error {
		_, err := tx.ExecBatch(ctx, stmts)
		return err
	}); err != nil {
		return s.errf("stage entries: %w", err)
	}
	return nil
}

var (
	insertLoadEntrySQL  = insertSQL("entry_load_entries", loadEntryColumns)
	insertLoadPersonSQL = insertSQL("entry_load_persons", loadPersonColumns)
)

func insertSQL(table string, cols []string) string {
	q := `INSERT INTO ` + table + ` (`
	v := ``
	for i, c := range cols {
		if i > 0 {
			q, v = q+", ", v+", "
		}
		q += c
		v += fmt.Sprintf("$%d", i+1)
	}
	return q + `) VALUES (` + v + `)`
}

// copyIn copies one chunk into entries and entry_persons within the
// load's transaction, encoding each entry as COPY asks for it.
func (l *openLoad) copyIn(ctx context.Context, s *Store, entries []policy.Entry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return s.errf("stage entries: %w", l.err)
	}
	var links [][]any
	row := make([]any, len(loadEntryColumns)-1)
	n, err := l.tx.CopyFunc(ctx, "entries", loadEntryColumns[1:], len(entries), func(i int) ([]any, error) {
		e := storeutil.NormalizeEntry(entries[i])
		if l.first == "" || e.ID < l.first {
			l.first = e.ID
		}
		if e.ID > l.last {
			l.last = e.ID
		}
		j, err := storeutil.EncodeEntry(e)
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", e.ID, err)
		}
		row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7] = e.ID, e.Subject.Value,
			string(e.Subject.Kind), e.List, e.OriginatingDepartment, e.Reason, e.LegalBasis, string(j.EvidenceRefs)
		row[8], row[9], row[10], row[11], row[12], row[13], row[14] = e.DecidedAt, e.PublishedAt,
			e.ValidUntil, e.RevokedAt, e.RevocationReason, string(j.Objections), string(j.ResponsiblePersons)
		row[15], row[16], row[17], row[18] = e.CreatedAt, e.UpdatedAt, e.Version, string(j.Lifecycle)
		for _, pl := range storeutil.PersonLinks(e) {
			links = append(links, []any{e.ID, pl.PersonID, string(pl.Role)})
		}
		return row, nil
	})
	if err == nil && len(links) > 0 {
		_, err = l.tx.CopyFunc(ctx, "entry_persons", loadPersonColumns[1:], len(links), func(i int) ([]any, error) {
			return links[i], nil
		})
	}
	if err != nil {
		l.err = s.d.MapErr(err)
		return s.errf("stage entries: %w", l.err)
	}
	l.n += n
	if !l.allChanged && l.n >= changeLogRows {
		if err := l.tx.SkipChangeLog(ctx); err != nil {
			l.err = err
			return s.errf("stage entries: %w", err)
		}
		l.allChanged = true
	}
	return nil
}

// rollback ends the load's transaction, keeping nothing.
func (l *openLoad) rollback(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_ = l.tx.Rollback(rctx)
}

// CommitEntryLoad moves the load's staged entries and person links into
// entries and entry_persons, and writes c, in one transaction: all of them
// or none. The load can be committed once (ErrNotFound after). The staged
// rows stay until DiscardEntryLoad. On a LoadTxer it writes c in the
// load's transaction and commits it.
func (s *Store) CommitEntryLoad(ctx context.Context, id string, c service.EntryChanges) (int64, error) {
	if v, ok := s.loads.LoadAndDelete(id); ok {
		return s.commitLoadTx(ctx, v.(*openLoad), c)
	}
	defer s.stagedGate.release(id)
	var n int64
	err := s.db.InTx(ctx, func(tx Tx) error {
		gone, err := tx.Exec(ctx, `DELETE FROM entry_loads WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if gone != 1 {
			return fmt.Errorf("load %q: %w", id, service.ErrNotFound)
		}
		if n, err = tx.Exec(ctx, `INSERT INTO entries (`+EntryColumns+`) SELECT `+EntryColumns+`
			FROM entry_load_entries WHERE load_id = $1`, id); err != nil {
			return s.d.MapErr(err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO entry_persons (entry_id, person_id, role)
			SELECT entry_id, person_id, role FROM entry_load_persons WHERE load_id = $1`, id); err != nil {
			return s.d.MapErr(err)
		}
		return s.applyEntryChangesTx(ctx, tx, c)
	})
	if err != nil {
		return 0, s.errf("commit entry load: %w", err)
	}
	s.afterLoad(ctx, n)
	return n, nil
}

func (s *Store) commitLoadTx(ctx context.Context, l *openLoad, c service.EntryChanges) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fail := func(err error) (int64, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		_ = l.tx.Rollback(rctx)
		return 0, s.errf("commit entry load: %w", err)
	}
	if l.err != nil {
		return fail(l.err)
	}
	// Before c: its inserts and updates announce themselves after the
	// copied entries, as they are applied after them.
	events, err := l.tx.WriteDeferredEvents(ctx, l.first, l.last, l.n)
	if err != nil {
		return fail(s.d.MapErr(err))
	}
	if events != l.n {
		return fail(fmt.Errorf("%d outbox rows written for %d entries", events, l.n))
	}
	if err := s.applyEntryChangesTx(ctx, l.tx, c); err != nil {
		return fail(s.d.MapErr(err))
	}
	if l.allChanged {
		if err := l.tx.MarkAllChanged(ctx); err != nil {
			return fail(err)
		}
	}
	if err := l.tx.Commit(ctx); err != nil {
		return fail(s.d.MapErr(err))
	}
	s.afterLoad(ctx, l.n)
	return l.n, nil
}

// DiscardEntryLoad deletes the load's staged rows and its registration,
// or rolls back its transaction.
func (s *Store) DiscardEntryLoad(ctx context.Context, id string) error {
	if v, ok := s.loads.LoadAndDelete(id); ok {
		v.(*openLoad).rollback(ctx)
		return nil
	}
	defer s.stagedGate.release(id)
	err := s.db.InTx(ctx, func(tx Tx) error {
		_, err := tx.ExecBatch(ctx, []Stmt{
			{`DELETE FROM entry_load_entries WHERE load_id = $1`, []any{id}},
			{`DELETE FROM entry_load_persons WHERE load_id = $1`, []any{id}},
			{`DELETE FROM entry_loads WHERE id = $1`, []any{id}},
		})
		return err
	})
	if err != nil {
		return s.errf("discard entry load: %w", err)
	}
	return nil
}
