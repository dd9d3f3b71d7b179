package sqlcommon

import (
	"context"
	"fmt"
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

// staleLoad is how long a load may stay staged before a later one takes it
// for abandoned (its process crashed) and clears it.
const staleLoad = 24 * time.Hour

var _ service.EntryLoader = (*Store)(nil)

// BeginEntryLoad registers load id, and clears the staged rows of loads
// begun more than a day before now, or committed but not discarded.
func (s *Store) BeginEntryLoad(ctx context.Context, id string, now time.Time) error {
	err := s.db.InTx(ctx, func(tx Tx) error {
		_, err := tx.ExecBatch(ctx, []Stmt{
			{`DELETE FROM entry_loads WHERE started_at < $1`, []any{now.Add(-staleLoad)}},
			{`DELETE FROM entry_load_entries WHERE load_id NOT IN (SELECT id FROM entry_loads)`, nil},
			{`DELETE FROM entry_load_persons WHERE load_id NOT IN (SELECT id FROM entry_loads)`, nil},
			{`INSERT INTO entry_loads (id, started_at) VALUES ($1, $2)`, []any{id, now}},
		})
		return s.d.MapErr(err)
	})
	if err != nil {
		return s.errf("begin entry load: %w", err)
	}
	return nil
}

// StageEntries writes entries and their person links into the load's
// staging rows: COPY on PostgreSQL, prepared inserts in one transaction on
// SQLite. Nothing is visible to readers of entries.
func (s *Store) StageEntries(ctx context.Context, id string, entries []policy.Entry) error {
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

// CommitEntryLoad moves the load's staged entries and person links into
// entries and entry_persons, and writes c, in one transaction: all of them
// or none. The load can be committed once (ErrNotFound after). The staged
// rows stay until DiscardEntryLoad.
func (s *Store) CommitEntryLoad(ctx context.Context, id string, c service.EntryChanges) (int64, error) {
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
	return n, nil
}

// DiscardEntryLoad deletes the load's staged rows and its registration.
func (s *Store) DiscardEntryLoad(ctx context.Context, id string) error {
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
