package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/adapters/internal/storeutil"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

var _ service.SourceStore = (*Store)(nil)

// SourceState returns what is kept about a source, or service.ErrNotFound.
func (s *Store) SourceState(ctx context.Context, name string) (service.SourceState, error) {
	var (
		st                       service.SourceState
		applied, synced, errored *time.Time
	)
	err := s.pool.QueryRow(ctx, `SELECT name, revision, entries, applied_at, synced_at, last_error, last_error_at
		FROM sources WHERE name = $1`, name).Scan(&st.Name, &st.Revision, &st.Entries, &applied, &synced,
		&st.LastError, &errored)
	if errors.Is(err, pgx.ErrNoRows) {
		return service.SourceState{}, fmt.Errorf("postgres: source %q: %w", name, service.ErrNotFound)
	}
	if err != nil {
		return service.SourceState{}, fmt.Errorf("postgres: source %q: %w", name, err)
	}
	st.AppliedAt, st.SyncedAt, st.LastErrorAt = utc(applied), utc(synced), utc(errored)
	return st, nil
}

func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// RecordSourceError keeps msg as the source's last error.
func (s *Store) RecordSourceError(ctx context.Context, name string, at time.Time, msg string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO sources (name, last_error, last_error_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET last_error = EXCLUDED.last_error, last_error_at = EXCLUDED.last_error_at`,
		name, msg, at)
	if err != nil {
		return fmt.Errorf("postgres: record error of source %q: %w", name, err)
	}
	return nil
}

// ApplySource makes a.Items the source's whole set of entries, in one
// transaction that holds the source's row lock, so that replicas applying
// the same snapshot at once queue and the second finds nothing to do.
func (s *Store) ApplySource(ctx context.Context, a service.SourceApply) (service.SourceApplied, error) {
	var res service.SourceApplied
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		res = service.SourceApplied{Revision: a.Revision}
		if _, err := tx.Exec(ctx, `INSERT INTO sources (name) VALUES ($1) ON CONFLICT DO NOTHING`, a.Source); err != nil {
			return err
		}
		var revision string
		if err := tx.QueryRow(ctx, `SELECT revision FROM sources WHERE name = $1 FOR UPDATE`, a.Source).Scan(&revision); err != nil {
			return err
		}
		current, err := sourceItems(ctx, tx, a.Source)
		if err != nil {
			return err
		}
		if revision == a.Revision && len(current) == len(a.Items) {
			res.Unchanged, res.Kept = true, len(a.Items)
			_, err := tx.Exec(ctx, `UPDATE sources SET synced_at = greatest(synced_at, $2), last_error = '',
				last_error_at = NULL WHERE name = $1`, a.Source, a.At)
			return err
		}
		plan := storeutil.PlanSourceApply(a, current)
		res.Kept = plan.Kept
		if err := s.renameTaken(ctx, tx, a.Revision, plan.Add); err != nil {
			return err
		}
		if err := insertEntriesTx(ctx, tx, plan.AddEntries()); err != nil {
			return err
		}
		for _, it := range plan.Add {
			res.Subjects = append(res.Subjects, storeutil.Affected(it.Entry)...)
		}
		if len(plan.DropEntries) > 0 {
			rows, err := tx.Query(ctx, `UPDATE entries SET revoked_at = $2, revocation_reason = $3, updated_at = $2,
				version = version + 1 WHERE id = ANY($1) AND revoked_at IS NULL RETURNING subject`,
				plan.DropEntries, a.At, a.Reason)
			if err != nil {
				return err
			}
			subjects, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			res.Subjects = append(res.Subjects, subjects...)
			rows, err = tx.Query(ctx, `SELECT DISTINCT person_id FROM entry_persons WHERE entry_id = ANY($1)`, plan.DropEntries)
			if err != nil {
				return err
			}
			persons, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			res.Subjects = append(res.Subjects, persons...)
			if _, err := tx.Exec(ctx, `DELETE FROM source_items WHERE source = $1 AND item_id = ANY($2)`,
				a.Source, plan.DropItems); err != nil {
				return err
			}
			res.Removed = len(plan.DropItems)
		}
		if len(plan.Add) > 0 {
			items, entries := make([]string, len(plan.Add)), make([]string, len(plan.Add))
			for i, it := range plan.Add {
				items[i], entries[i] = it.ItemID, it.Entry.ID
			}
			if _, err := tx.Exec(ctx, `INSERT INTO source_items (source, item_id, entry_id)
				SELECT $1, i, e FROM unnest($2::text[], $3::text[]) AS x(i, e)`, a.Source, items, entries); err != nil {
				return mapErr(err)
			}
			res.Added = len(plan.Add)
		}
		_, err = tx.Exec(ctx, `UPDATE sources SET revision = $2, entries = $3, applied_at = $4, synced_at = $4,
			last_error = '', last_error_at = NULL WHERE name = $1`, a.Source, a.Revision, len(a.Items), a.At)
		return err
	})
	if err != nil {
		return service.SourceApplied{}, fmt.Errorf("postgres: apply source %q: %w", a.Source, err)
	}
	return res, nil
}

func sourceItems(ctx context.Context, tx pgx.Tx, source string) (map[string]string, error) {
	rows, err := tx.Query(ctx, `SELECT item_id, entry_id FROM source_items WHERE source = $1`, source)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var item, entry string
		if err := rows.Scan(&item, &entry); err != nil {
			return nil, err
		}
		out[item] = entry
	}
	return out, rows.Err()
}

// renameTaken gives a new entry id to items whose id an entry already has:
// an item that left the source earlier (its entry revoked, kept as
// history) and came back.
func (s *Store) renameTaken(ctx context.Context, tx pgx.Tx, revision string, add []service.SourceEntry) error {
	if len(add) == 0 {
		return nil
	}
	ids := make([]string, len(add))
	for i, it := range add {
		ids[i] = it.Entry.ID
	}
	rows, err := tx.Query(ctx, `SELECT id FROM entries WHERE id = ANY($1)`, ids)
	if err != nil {
		return err
	}
	taken, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	return storeutil.RenameTaken(add, taken, revision, func(id string) (bool, error) {
		var exists bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM entries WHERE id = $1)`, id).Scan(&exists)
		return exists, err
	})
}

// insertEntriesTx inserts entries and their person links inside tx, in one
// pipelined round trip.
func insertEntriesTx(ctx context.Context, tx pgx.Tx, entries []policy.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	n := 0
	for _, e := range entries {
		e = storeutil.NormalizeEntry(e)
		j, err := storeutil.EncodeEntry(e)
		if err != nil {
			return err
		}
		b.Queue(`INSERT INTO entries (`+entrySelect+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
			e.ID, e.Subject.Value, string(e.Subject.Kind), e.List, e.OriginatingDepartment, e.Reason,
			e.LegalBasis, string(j.EvidenceRefs), e.DecidedAt, e.PublishedAt, e.ValidUntil, e.RevokedAt,
			e.RevocationReason, string(j.Objections), string(j.ResponsiblePersons),
			e.CreatedAt, e.UpdatedAt, e.Version, string(j.Lifecycle))
		n++
		if persons, roles := linkArrays(e); len(persons) > 0 {
			b.Queue(insertLinksSQL, e.ID, persons, roles)
			n++
		}
	}
	br := tx.SendBatch(ctx, b)
	for range n {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return mapErr(err)
		}
	}
	return br.Close()
}
