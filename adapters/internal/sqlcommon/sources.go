package sqlcommon

import (
	"context"
	"time"

	"github.com/credgate/credgate/adapters/internal/storeutil"
	"github.com/credgate/credgate/service"
)

// SourceState returns what is kept about a source, or service.ErrNotFound.
func (s *Store) SourceState(ctx context.Context, name string) (service.SourceState, error) {
	var (
		st                       service.SourceState
		applied, synced, errored *time.Time
	)
	err := s.db.QueryRow(ctx, `SELECT name, revision, entries, applied_at, synced_at, last_error, last_error_at
		FROM sources WHERE name = $1`, name).Scan(&st.Name, &st.Revision, &st.Entries, &applied, &synced,
		&st.LastError, &errored)
	if isNoRows(err) {
		return service.SourceState{}, s.errf("source %q: %w", name, service.ErrNotFound)
	}
	if err != nil {
		return service.SourceState{}, s.errf("source %q: %w", name, err)
	}
	st.AppliedAt, st.SyncedAt, st.LastErrorAt = orZero(applied), orZero(synced), orZero(errored)
	return st, nil
}

func orZero(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// RecordSourceError keeps msg as the source's last error.
func (s *Store) RecordSourceError(ctx context.Context, name string, at time.Time, msg string) error {
	err := s.db.InTx(ctx, func(tx Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO sources (name, last_error, last_error_at) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO UPDATE SET last_error = excluded.last_error, last_error_at = excluded.last_error_at`,
			name, msg, at)
		return err
	})
	if err != nil {
		return s.errf("record error of source %q: %w", name, err)
	}
	return nil
}

// ApplySource makes a.Items the source's whole set of entries in one
// transaction. The source's row is read with Dialect.ForUpdate, so that
// replicas applying the same snapshot at once queue and the second finds
// nothing to do (SQLite's single writer queues them anyway).
func (s *Store) ApplySource(ctx context.Context, a service.SourceApply) (service.SourceApplied, error) {
	var res service.SourceApplied
	err := s.db.InTx(ctx, func(tx Tx) (err error) {
		res, err = s.applySourceTx(ctx, tx, a)
		return err
	})
	if err != nil {
		return service.SourceApplied{}, s.errf("apply source %q: %w", a.Source, err)
	}
	return res, nil
}

func (s *Store) applySourceTx(ctx context.Context, tx Tx, a service.SourceApply) (service.SourceApplied, error) {
	res := service.SourceApplied{Revision: a.Revision}
	if _, err := tx.Exec(ctx, `INSERT INTO sources (name) VALUES ($1) ON CONFLICT DO NOTHING`, a.Source); err != nil {
		return res, err
	}
	var revision string
	if err := tx.QueryRow(ctx, `SELECT revision FROM sources WHERE name = $1`+s.d.ForUpdate, a.Source).Scan(&revision); err != nil {
		return res, err
	}
	held := map[string]string{}
	rows, err := tx.Query(ctx, `SELECT item_id, entry_id FROM source_items WHERE source = $1`, a.Source)
	if _, err := collect(rows, err, func(r Rows) (struct{}, error) {
		var item, entry string
		err := r.Scan(&item, &entry)
		held[item] = entry
		return struct{}{}, err
	}); err != nil {
		return res, err
	}
	if revision == a.Revision && len(held) == len(a.Items) {
		res.Unchanged, res.Kept = true, len(a.Items)
		_, err := tx.Exec(ctx, `UPDATE sources SET
			synced_at = CASE WHEN synced_at IS NULL OR synced_at < $2 THEN $2 ELSE synced_at END,
			last_error = '', last_error_at = NULL WHERE name = $1`, a.Source, a.At)
		return res, err
	}
	plan := storeutil.PlanSourceApply(a, held)
	res.Kept = plan.Kept
	exists := func(id string) (bool, error) {
		var n int64
		err := tx.QueryRow(ctx, `SELECT count(*) FROM entries WHERE id = $1`, id).Scan(&n)
		return n > 0, err
	}
	var taken []string
	for _, it := range plan.Add {
		ok, err := exists(it.Entry.ID)
		if err != nil {
			return res, err
		}
		if ok {
			taken = append(taken, it.Entry.ID)
		}
	}
	if err := storeutil.RenameTaken(plan.Add, taken, a.Revision, exists); err != nil {
		return res, err
	}
	if err := s.insertEntriesTx(ctx, tx, plan.AddEntries()); err != nil {
		return res, err
	}
	for _, it := range plan.Add {
		res.Subjects = append(res.Subjects, storeutil.Affected(it.Entry)...)
	}
	var stmts []Stmt
	for _, id := range plan.DropEntries {
		var subject string
		err := tx.QueryRow(ctx, `UPDATE entries SET revoked_at = $2, revocation_reason = $3, updated_at = $2,
			version = version + 1 WHERE id = $1 AND revoked_at IS NULL RETURNING subject`,
			id, a.At, a.Reason).Scan(&subject)
		if isNoRows(err) {
			continue // revoked already (by an administrator)
		}
		if err != nil {
			return res, err
		}
		res.Subjects = append(res.Subjects, subject)
		rows, err := tx.Query(ctx, `SELECT DISTINCT person_id FROM entry_persons WHERE entry_id = $1`, id)
		persons, err := collect(rows, err, scanString)
		if err != nil {
			return res, err
		}
		res.Subjects = append(res.Subjects, persons...)
	}
	for _, item := range plan.DropItems {
		stmts = append(stmts, Stmt{`DELETE FROM source_items WHERE source = $1 AND item_id = $2`, []any{a.Source, item}})
	}
	res.Removed = len(plan.DropItems)
	for _, it := range plan.Add {
		stmts = append(stmts, Stmt{`INSERT INTO source_items (source, item_id, entry_id) VALUES ($1, $2, $3)`,
			[]any{a.Source, it.ItemID, it.Entry.ID}})
	}
	res.Added = len(plan.Add)
	stmts = append(stmts, Stmt{`UPDATE sources SET revision = $2, entries = $3, applied_at = $4, synced_at = $4,
		last_error = '', last_error_at = NULL WHERE name = $1`, []any{a.Source, a.Revision, len(a.Items), a.At}})
	if _, err := tx.ExecBatch(ctx, stmts); err != nil {
		return res, s.d.MapErr(err)
	}
	return res, nil
}
