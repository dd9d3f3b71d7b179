package sqlcommon

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/credgate/credgate/adapters/internal/storeutil"
	"github.com/credgate/credgate/policy"
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
		return service.SourceState{}, fmt.Errorf("source %q: %w", name, service.ErrNotFound)
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
	var (
		revision        string
		entries         int
		applied, synced *time.Time
	)
	if err := tx.QueryRow(ctx, `SELECT revision, entries, applied_at, synced_at FROM sources WHERE name = $1`+s.d.ForUpdate,
		a.Source).Scan(&revision, &entries, &applied, &synced); err != nil {
		return res, err
	}
	// Replicas fetch the same source each on its own schedule: a slow
	// fetch that commits after a newer snapshot was applied (or confirmed)
	// would put back what upstream no longer delivers, revoking and
	// re-inserting entries. The newer one stays; this one changes nothing
	// and reports the revision in force (service.SourceApplied has no
	// field of its own for it: Unchanged with another revision).
	if (applied != nil && a.At.Before(*applied)) || (synced != nil && a.At.Before(*synced)) {
		res.Revision, res.Unchanged, res.Kept = revision, true, entries
		return res, nil
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
	adding := make([]string, len(plan.Add))
	for i, it := range plan.Add {
		adding[i] = it.Entry.ID
	}
	taken, err := queryIn(ctx, tx, `SELECT id FROM entries WHERE id IN (%s)`, nil, adding, scanString)
	if err != nil {
		return res, err
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
	// Entries revoked already (by an administrator) are left as they are.
	// One with an open proceeding (an objection, a repair or exit
	// application) is revoked through policy.Revoke, which closes it in
	// the same version (closed_by_revocation) and so its row of the
	// proceedings index; the others by one statement.
	objected, err := queryIn(ctx, tx, `SELECT `+EntryColumns+` FROM entries WHERE id IN (%s) AND revoked_at IS NULL
		AND id IN (SELECT entry_id FROM entry_proceedings WHERE closed_at IS NULL)`,
		nil, plan.DropEntries, func(r Rows) (policy.Entry, error) { return scanEntry(r) })
	if err != nil {
		return res, err
	}
	drop := plan.DropEntries
	if len(objected) > 0 {
		closing := make(map[string]bool, len(objected))
		for i, e := range objected {
			e = policy.Revoke(e, a.Reason, a.At)
			e.UpdatedAt, e.Version = a.At, e.Version+1
			objected[i] = e
			closing[e.ID] = true
		}
		if err := s.applyEntryChangesTx(ctx, tx, service.EntryChanges{Update: objected}); err != nil {
			return res, err
		}
		drop = slices.DeleteFunc(slices.Clone(drop), func(id string) bool { return closing[id] })
	}
	type revoked struct{ id, subject string }
	gone, err := queryIn(ctx, tx, `UPDATE entries SET revoked_at = $1, revocation_reason = $2, updated_at = $1,
		version = version + 1 WHERE id IN (%s) AND revoked_at IS NULL RETURNING id, subject`,
		[]any{a.At, a.Reason}, drop, func(r Rows) (revoked, error) {
			var v revoked
			err := r.Scan(&v.id, &v.subject)
			return v, err
		})
	if err != nil {
		return res, err
	}
	for _, e := range objected {
		gone = append(gone, revoked{e.ID, e.Subject.Value})
	}
	goneIDs := make([]string, len(gone))
	for i, g := range gone {
		goneIDs[i] = g.id
		res.Subjects = append(res.Subjects, g.subject)
	}
	persons, err := queryIn(ctx, tx, `SELECT DISTINCT person_id FROM entry_persons WHERE entry_id IN (%s)`,
		nil, goneIDs, scanString)
	if err != nil {
		return res, err
	}
	res.Subjects = append(res.Subjects, persons...)
	var stmts []Stmt
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

// inChunk bounds the values of one IN list, well under both databases'
// parameter limits.
const inChunk = 500

// queryIn runs query once per chunk of values, with %s replaced by the
// chunk's placeholders, which follow args; the rows of every chunk are
// collected with scan. No values, no query.
func queryIn[T any](ctx context.Context, q Querier, query string, args []any, values []string, scan func(Rows) (T, error)) ([]T, error) {
	var out []T
	for len(values) > 0 {
		chunk := values[:min(inChunk, len(values))]
		values = values[len(chunk):]
		all := append(make([]any, 0, len(args)+len(chunk)), args...)
		marks := make([]string, len(chunk))
		for i, v := range chunk {
			all = append(all, v)
			marks[i] = "$" + strconv.Itoa(len(all))
		}
		rows, err := q.Query(ctx, fmt.Sprintf(query, strings.Join(marks, ", ")), all...)
		got, err := collect(rows, err, scan)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}
