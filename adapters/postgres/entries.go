package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/adapters/internal/storeutil"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

const entryColumns = `id, subject, subject_kind, list, originating_department, reason, legal_basis,
	evidence_refs, decided_at, published_at, valid_until, revoked_at, revocation_reason,
	objections, responsible_persons, created_at, updated_at, version`

// entrySelect is what reads select: the written columns and the
// lifecycle document (0003), which writers that predate it leave '{}'.
const entrySelect = entryColumns + `, lifecycle`

const insertLinksSQL = `INSERT INTO entry_persons (entry_id, person_id, role)
	SELECT $1, p, r FROM unnest($2::text[], $3::text[]) AS l(p, r)`

// InsertEntries stores all entries in one transaction, or none of them.
// The inserts are pipelined in one round trip.
func (s *Store) InsertEntries(ctx context.Context, entries []policy.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	ids := make([]string, 0, len(entries))
	for _, e := range entries {
		e = storeutil.NormalizeEntry(e)
		j, err := storeutil.EncodeEntry(e)
		if err != nil {
			return fmt.Errorf("postgres: insert entries: %w", err)
		}
		b.Queue(`INSERT INTO entries (`+entrySelect+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
			e.ID, e.Subject.Value, string(e.Subject.Kind), e.List, e.OriginatingDepartment, e.Reason,
			e.LegalBasis, string(j.EvidenceRefs), e.DecidedAt, e.PublishedAt, e.ValidUntil, e.RevokedAt,
			e.RevocationReason, string(j.Objections), string(j.ResponsiblePersons),
			e.CreatedAt, e.UpdatedAt, e.Version, string(j.Lifecycle))
		ids = append(ids, e.ID)
		if persons, roles := linkArrays(e); len(persons) > 0 {
			b.Queue(insertLinksSQL, e.ID, persons, roles)
			ids = append(ids, e.ID)
		}
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		br := tx.SendBatch(ctx, b)
		for _, id := range ids {
			if _, err := br.Exec(); err != nil {
				br.Close()
				return fmt.Errorf("entry %q: %w", id, mapErr(err))
			}
		}
		return br.Close()
	})
	if err != nil {
		return fmt.Errorf("postgres: insert entries: %w", err)
	}
	return nil
}

// linkArrays is the person index of e as parallel arrays for unnest.
func linkArrays(e policy.Entry) (persons, roles []string) {
	for _, l := range storeutil.PersonLinks(e) {
		persons = append(persons, l.PersonID)
		roles = append(roles, string(l.Role))
	}
	return persons, roles
}

// GetEntry returns the entry with the given ID, or service.ErrNotFound.
func (s *Store) GetEntry(ctx context.Context, id string) (policy.Entry, error) {
	e, err := scanEntry(s.pool.QueryRow(ctx, `SELECT `+entrySelect+` FROM entries WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return policy.Entry{}, fmt.Errorf("postgres: entry %q: %w", id, service.ErrNotFound)
	}
	if err != nil {
		return policy.Entry{}, fmt.Errorf("postgres: get entry %q: %w", id, err)
	}
	return e, nil
}

// UpdateEntry replaces the entry whose stored version is e.Version-1 and
// rewrites its person index in the same transaction.
func (s *Store) UpdateEntry(ctx context.Context, e policy.Entry) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return updateEntryTx(ctx, tx, e) })
	if err != nil {
		return fmt.Errorf("postgres: update entry %q: %w", e.ID, err)
	}
	return nil
}

// updateEntryTx is UpdateEntry inside tx (ApplyEntryChanges uses it too).
func updateEntryTx(ctx context.Context, tx pgx.Tx, e policy.Entry) error {
	e = storeutil.NormalizeEntry(e)
	j, err := storeutil.EncodeEntry(e)
	if err != nil {
		return err
	}
	persons, roles := linkArrays(e)
	tag, err := tx.Exec(ctx, `UPDATE entries SET
		subject = $2, subject_kind = $3, list = $4, originating_department = $5, reason = $6,
		legal_basis = $7, evidence_refs = $8, decided_at = $9, published_at = $10, valid_until = $11,
		revoked_at = $12, revocation_reason = $13, objections = $14, responsible_persons = $15,
		created_at = $16, updated_at = $17, version = $18, lifecycle = $20
		WHERE id = $1 AND version = $19`,
		e.ID, e.Subject.Value, string(e.Subject.Kind), e.List, e.OriginatingDepartment, e.Reason,
		e.LegalBasis, string(j.EvidenceRefs), e.DecidedAt, e.PublishedAt, e.ValidUntil, e.RevokedAt,
		e.RevocationReason, string(j.Objections), string(j.ResponsiblePersons),
		e.CreatedAt, e.UpdatedAt, e.Version, e.Version-1, string(j.Lifecycle))
	if err != nil {
		return mapErr(err)
	}
	if err := checkUpdated(ctx, tx, tag.RowsAffected(), "entries", e.ID); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM entry_persons WHERE entry_id = $1`, e.ID); err != nil {
		return err
	}
	if len(persons) > 0 {
		if _, err := tx.Exec(ctx, insertLinksSQL, e.ID, persons, roles); err != nil {
			return mapErr(err)
		}
	}
	return nil
}

// checkUpdated tells a lost optimistic update (ErrConflict) from a missing
// row (ErrNotFound) after an UPDATE ... WHERE id = $1 AND version = ...
func checkUpdated(ctx context.Context, tx pgx.Tx, affected int64, table, id string) error {
	if affected == 1 {
		return nil
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+table+` WHERE id = $1)`, id).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return service.ErrNotFound
	}
	return fmt.Errorf("%w: stale version", service.ErrConflict)
}

// ListEntries returns entries ordered by ID, filtered and paginated by f.
func (s *Store) ListEntries(ctx context.Context, f service.EntryFilter) ([]policy.Entry, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Subject != "" {
		where = append(where, "subject = "+arg(f.Subject))
	}
	if f.List != "" {
		where = append(where, "list = "+arg(f.List))
	}
	if f.After != "" {
		where = append(where, "id > "+arg(f.After))
	}
	q := `SELECT ` + entrySelect + ` FROM entries`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY id LIMIT ` + arg(storeutil.Limit(f.Limit))
	out, err := s.queryEntries(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list entries: %w", err)
	}
	return out, nil
}

// EntriesAffecting returns, ordered by ID, the entries on subject and the
// entries naming subject as a responsible person: two indexed lookups in
// one query. Errors do not name the subject, which may be personal data.
func (s *Store) EntriesAffecting(ctx context.Context, subject string) ([]policy.Entry, error) {
	out, err := s.queryEntries(ctx, `SELECT `+entrySelect+` FROM entries WHERE id IN (
			SELECT id FROM entries WHERE subject = $1
			UNION
			SELECT entry_id FROM entry_persons WHERE person_id = $1
		) ORDER BY id`, subject)
	if err != nil {
		return nil, fmt.Errorf("postgres: entries affecting a subject: %w", err)
	}
	return out, nil
}

func (s *Store) queryEntries(ctx context.Context, q string, args ...any) ([]policy.Entry, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []policy.Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func scanEntry(row pgx.Row) (policy.Entry, error) {
	var (
		e                   policy.Entry
		kind                string
		refs, objs, persons []byte
		lifecycle           []byte
		validUntil, revoked *time.Time
	)
	if err := row.Scan(&e.ID, &e.Subject.Value, &kind, &e.List, &e.OriginatingDepartment, &e.Reason,
		&e.LegalBasis, &refs, &e.DecidedAt, &e.PublishedAt, &validUntil, &revoked, &e.RevocationReason,
		&objs, &persons, &e.CreatedAt, &e.UpdatedAt, &e.Version, &lifecycle); err != nil {
		return policy.Entry{}, err
	}
	e.Subject.Kind = policy.SubjectKind(kind)
	e.ValidUntil = validUntil
	e.RevokedAt = revoked
	// DecodeEntry also brings every time to UTC.
	if err := storeutil.DecodeEntry(&e, storeutil.EntryJSON{
		EvidenceRefs: refs, Objections: objs, ResponsiblePersons: persons, Lifecycle: lifecycle,
	}); err != nil {
		return policy.Entry{}, err
	}
	return e, nil
}
