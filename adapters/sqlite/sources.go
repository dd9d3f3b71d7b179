package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/credgate/credgate/adapters/internal/storeutil"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

var _ service.SourceStore = (*Store)(nil)

// SourceState returns what is kept about a source, or service.ErrNotFound.
func (s *Store) SourceState(ctx context.Context, name string) (service.SourceState, error) {
	var (
		st                       service.SourceState
		applied, synced, errored sql.NullInt64
	)
	err := s.r.QueryRowContext(ctx, `SELECT name, revision, entries, applied_at, synced_at, last_error, last_error_at
		FROM sources WHERE name = ?`, name).Scan(&st.Name, &st.Revision, &st.Entries, &applied, &synced,
		&st.LastError, &errored)
	if errors.Is(err, sql.ErrNoRows) {
		return service.SourceState{}, fmt.Errorf("sqlite: source %q: %w", name, service.ErrNotFound)
	}
	if err != nil {
		return service.SourceState{}, fmt.Errorf("sqlite: source %q: %w", name, err)
	}
	st.AppliedAt, st.SyncedAt, st.LastErrorAt = orZero(applied), orZero(synced), orZero(errored)
	return st, nil
}

func orZero(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMicros(v.Int64)
}

// RecordSourceError keeps msg as the source's last error.
func (s *Store) RecordSourceError(ctx context.Context, name string, at time.Time, msg string) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO sources (name, last_error, last_error_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET last_error = excluded.last_error, last_error_at = excluded.last_error_at`,
		name, msg, micros(at))
	if err != nil {
		return fmt.Errorf("sqlite: record error of source %q: %w", name, err)
	}
	return nil
}

// ApplySource makes a.Items the source's whole set of entries in one
// transaction (SQLite's single writer serialises applies).
func (s *Store) ApplySource(ctx context.Context, a service.SourceApply) (service.SourceApplied, error) {
	res, err := s.applySource(ctx, a)
	if err != nil {
		return service.SourceApplied{}, fmt.Errorf("sqlite: apply source %q: %w", a.Source, err)
	}
	return res, nil
}

func (s *Store) applySource(ctx context.Context, a service.SourceApply) (service.SourceApplied, error) {
	res := service.SourceApplied{Revision: a.Revision}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return res, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO sources (name) VALUES (?) ON CONFLICT DO NOTHING`, a.Source); err != nil {
		return res, err
	}
	var revision string
	if err := tx.QueryRowContext(ctx, `SELECT revision FROM sources WHERE name = ?`, a.Source).Scan(&revision); err != nil {
		return res, err
	}
	held := map[string]string{}
	rows, err := tx.QueryContext(ctx, `SELECT item_id, entry_id FROM source_items WHERE source = ?`, a.Source)
	if err != nil {
		return res, err
	}
	for rows.Next() {
		var item, entry string
		if err := rows.Scan(&item, &entry); err != nil {
			rows.Close()
			return res, err
		}
		held[item] = entry
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, err
	}
	if revision == a.Revision && len(held) == len(a.Items) {
		res.Unchanged, res.Kept = true, len(a.Items)
		if _, err := tx.ExecContext(ctx, `UPDATE sources SET synced_at = max(coalesce(synced_at, 0), ?), last_error = '',
			last_error_at = NULL WHERE name = ?`, micros(a.At), a.Source); err != nil {
			return res, err
		}
		return res, tx.Commit()
	}
	plan := storeutil.PlanSourceApply(a, held)
	res.Kept = plan.Kept
	exists := func(id string) (bool, error) {
		var n int
		err := tx.QueryRowContext(ctx, `SELECT count(*) FROM entries WHERE id = ?`, id).Scan(&n)
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
	if err := insertEntriesTx(ctx, tx, plan.AddEntries()); err != nil {
		return res, err
	}
	for _, it := range plan.Add {
		res.Subjects = append(res.Subjects, storeutil.Affected(it.Entry)...)
	}
	if len(plan.DropEntries) > 0 {
		for _, id := range plan.DropEntries {
			var subject string
			err := tx.QueryRowContext(ctx, `UPDATE entries SET revoked_at = ?, revocation_reason = ?, updated_at = ?,
				version = version + 1 WHERE id = ? AND revoked_at IS NULL RETURNING subject`,
				micros(a.At), a.Reason, micros(a.At), id).Scan(&subject)
			if errors.Is(err, sql.ErrNoRows) {
				continue // revoked already (by an administrator)
			}
			if err != nil {
				return res, err
			}
			res.Subjects = append(res.Subjects, subject)
			prow, err := tx.QueryContext(ctx, `SELECT DISTINCT person_id FROM entry_persons WHERE entry_id = ?`, id)
			if err != nil {
				return res, err
			}
			for prow.Next() {
				var p string
				if err := prow.Scan(&p); err != nil {
					prow.Close()
					return res, err
				}
				res.Subjects = append(res.Subjects, p)
			}
			prow.Close()
			if err := prow.Err(); err != nil {
				return res, err
			}
		}
		for _, item := range plan.DropItems {
			if _, err := tx.ExecContext(ctx, `DELETE FROM source_items WHERE source = ? AND item_id = ?`, a.Source, item); err != nil {
				return res, err
			}
		}
		res.Removed = len(plan.DropItems)
	}
	if len(plan.Add) > 0 {
		ins, err := tx.PrepareContext(ctx, `INSERT INTO source_items (source, item_id, entry_id) VALUES (?, ?, ?)`)
		if err != nil {
			return res, err
		}
		defer ins.Close()
		for _, it := range plan.Add {
			if _, err := ins.ExecContext(ctx, a.Source, it.ItemID, it.Entry.ID); err != nil {
				return res, mapErr(err)
			}
		}
		res.Added = len(plan.Add)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE sources SET revision = ?, entries = ?, applied_at = ?, synced_at = ?,
		last_error = '', last_error_at = NULL WHERE name = ?`, a.Revision, len(a.Items), micros(a.At), micros(a.At),
		a.Source); err != nil {
		return res, err
	}
	return res, tx.Commit()
}

// insertEntriesTx inserts entries and their person links inside tx.
func insertEntriesTx(ctx context.Context, tx *sql.Tx, entries []policy.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO entries (`+entrySelect+`)
		VALUES (?`+strings.Repeat(", ?", 18)+`)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	link, err := tx.PrepareContext(ctx, `INSERT INTO entry_persons (entry_id, person_id, role) VALUES (?, ?, ?)`)
	if err != nil {
		return err
	}
	defer link.Close()
	for _, e := range entries {
		e = storeutil.NormalizeEntry(e)
		j, err := storeutil.EncodeEntry(e)
		if err != nil {
			return err
		}
		if _, err := ins.ExecContext(ctx, e.ID, e.Subject.Value, string(e.Subject.Kind), e.List,
			e.OriginatingDepartment, e.Reason, e.LegalBasis, string(j.EvidenceRefs),
			micros(e.DecidedAt), micros(e.PublishedAt), microsPtr(e.ValidUntil), microsPtr(e.RevokedAt),
			e.RevocationReason, string(j.Objections), string(j.ResponsiblePersons),
			micros(e.CreatedAt), micros(e.UpdatedAt), e.Version, string(j.Lifecycle)); err != nil {
			return fmt.Errorf("entry %q: %w", e.ID, mapErr(err))
		}
		if err := insertLinks(ctx, link, e); err != nil {
			return err
		}
	}
	return nil
}
