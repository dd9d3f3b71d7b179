package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

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

// affectingSQL selects the entries on subject ?1 or naming ?1 among their
// responsible persons.
const affectingSQL = `SELECT ` + entrySelect + ` FROM entries WHERE id IN (
		SELECT id FROM entries WHERE subject = ?1
		UNION
		SELECT entry_id FROM entry_persons WHERE person_id = ?1
	) ORDER BY id`

// InsertEntries stores all entries in one transaction, or none of them.
func (s *Store) InsertEntries(ctx context.Context, entries []policy.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: insert entries: %w", err)
	}
	defer tx.Rollback()
	ins, err := tx.PrepareContext(ctx, `INSERT INTO entries (`+entrySelect+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("sqlite: insert entries: %w", err)
	}
	defer ins.Close()
	link, err := tx.PrepareContext(ctx, `INSERT INTO entry_persons (entry_id, person_id, role) VALUES (?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("sqlite: insert entries: %w", err)
	}
	defer link.Close()
	for _, e := range entries {
		e = storeutil.NormalizeEntry(e)
		j, err := storeutil.EncodeEntry(e)
		if err != nil {
			return fmt.Errorf("sqlite: insert entries: %w", err)
		}
		if _, err := ins.ExecContext(ctx, e.ID, e.Subject.Value, string(e.Subject.Kind), e.List,
			e.OriginatingDepartment, e.Reason, e.LegalBasis, string(j.EvidenceRefs),
			micros(e.DecidedAt), micros(e.PublishedAt), microsPtr(e.ValidUntil), microsPtr(e.RevokedAt),
			e.RevocationReason, string(j.Objections), string(j.ResponsiblePersons),
			micros(e.CreatedAt), micros(e.UpdatedAt), e.Version, string(j.Lifecycle)); err != nil {
			return fmt.Errorf("sqlite: insert entry %q: %w", e.ID, mapErr(err))
		}
		if err := insertLinks(ctx, link, e); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: insert entries: %w", mapErr(err))
	}
	return nil
}

func insertLinks(ctx context.Context, link *sql.Stmt, e policy.Entry) error {
	for _, l := range storeutil.PersonLinks(e) {
		if _, err := link.ExecContext(ctx, e.ID, l.PersonID, string(l.Role)); err != nil {
			return fmt.Errorf("sqlite: index persons of entry %q: %w", e.ID, mapErr(err))
		}
	}
	return nil
}

// GetEntry returns the entry with the given ID, or service.ErrNotFound.
func (s *Store) GetEntry(ctx context.Context, id string) (policy.Entry, error) {
	e, err := scanEntry(s.r.QueryRowContext(ctx, `SELECT `+entrySelect+` FROM entries WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return policy.Entry{}, fmt.Errorf("sqlite: entry %q: %w", id, service.ErrNotFound)
	}
	if err != nil {
		return policy.Entry{}, fmt.Errorf("sqlite: get entry %q: %w", id, err)
	}
	return e, nil
}

// UpdateEntry replaces the entry whose stored version is e.Version-1 and
// rewrites its person index in the same transaction.
func (s *Store) UpdateEntry(ctx context.Context, e policy.Entry) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: update entry %q: %w", e.ID, err)
	}
	defer tx.Rollback()
	if err := updateEntryTx(ctx, tx, e); err != nil {
		return fmt.Errorf("sqlite: update entry %q: %w", e.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: update entry %q: %w", e.ID, err)
	}
	return nil
}

// updateEntryTx is UpdateEntry inside tx (ApplyEntryChanges uses it too).
func updateEntryTx(ctx context.Context, tx *sql.Tx, e policy.Entry) error {
	e = storeutil.NormalizeEntry(e)
	j, err := storeutil.EncodeEntry(e)
	if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `UPDATE entries SET
		subject = ?, subject_kind = ?, list = ?, originating_department = ?, reason = ?, legal_basis = ?,
		evidence_refs = ?, decided_at = ?, published_at = ?, valid_until = ?, revoked_at = ?,
		revocation_reason = ?, objections = ?, responsible_persons = ?, created_at = ?, updated_at = ?,
		version = ?, lifecycle = ?
		WHERE id = ? AND version = ?`,
		e.Subject.Value, string(e.Subject.Kind), e.List, e.OriginatingDepartment, e.Reason, e.LegalBasis,
		string(j.EvidenceRefs), micros(e.DecidedAt), micros(e.PublishedAt), microsPtr(e.ValidUntil),
		microsPtr(e.RevokedAt), e.RevocationReason, string(j.Objections), string(j.ResponsiblePersons),
		micros(e.CreatedAt), micros(e.UpdatedAt), e.Version, string(j.Lifecycle),
		e.ID, e.Version-1)
	if err != nil {
		return mapErr(err)
	}
	if err := checkUpdated(ctx, tx, res, "entries", e.ID); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM entry_persons WHERE entry_id = ?`, e.ID); err != nil {
		return err
	}
	link, err := tx.PrepareContext(ctx, `INSERT INTO entry_persons (entry_id, person_id, role) VALUES (?, ?, ?)`)
	if err != nil {
		return err
	}
	defer link.Close()
	return insertLinks(ctx, link, e)
}

// checkUpdated tells a lost optimistic update (ErrConflict) from a missing
// row (ErrNotFound) after an UPDATE ... WHERE id = ? AND version = ?.
func checkUpdated(ctx context.Context, tx *sql.Tx, res sql.Result, table, id string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 1 {
		return nil
	}
	var exists int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE id = ?`, id).Scan(&exists); err != nil {
		return err
	}
	if exists == 0 {
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
	if f.Subject != "" {
		where = append(where, "subject = ?")
		args = append(args, f.Subject)
	}
	if f.List != "" {
		where = append(where, "list = ?")
		args = append(args, f.List)
	}
	if f.After != "" {
		where = append(where, "id > ?")
		args = append(args, f.After)
	}
	q := `SELECT ` + entrySelect + ` FROM entries`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY id LIMIT ?`
	args = append(args, storeutil.Limit(f.Limit))
	out, err := s.queryEntries(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list entries: %w", err)
	}
	return out, nil
}

// EntriesAffecting returns, ordered by ID, the entries on subject and the
// entries naming subject as a responsible person: two indexed lookups in
// one query. Errors do not name the subject, which may be personal data.
func (s *Store) EntriesAffecting(ctx context.Context, subject string) ([]policy.Entry, error) {
	out, err := s.queryEntries(ctx, affectingSQL, subject)
	if err != nil {
		return nil, fmt.Errorf("sqlite: entries affecting a subject: %w", err)
	}
	return out, nil
}

func (s *Store) queryEntries(ctx context.Context, q string, args ...any) ([]policy.Entry, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
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

func scanEntry(sc scanner) (policy.Entry, error) {
	var (
		e                                    policy.Entry
		kind                                 string
		refs, objs, persons, lifecycle       string
		decided, published, created, updated int64
		validUntil, revokedAt                sql.NullInt64
	)
	if err := sc.Scan(&e.ID, &e.Subject.Value, &kind, &e.List, &e.OriginatingDepartment, &e.Reason,
		&e.LegalBasis, &refs, &decided, &published, &validUntil, &revokedAt, &e.RevocationReason,
		&objs, &persons, &created, &updated, &e.Version, &lifecycle); err != nil {
		return policy.Entry{}, err
	}
	e.Subject.Kind = policy.SubjectKind(kind)
	e.DecidedAt = fromMicros(decided)
	e.PublishedAt = fromMicros(published)
	e.ValidUntil = fromMicrosPtr(validUntil)
	e.RevokedAt = fromMicrosPtr(revokedAt)
	e.CreatedAt = fromMicros(created)
	e.UpdatedAt = fromMicros(updated)
	if err := storeutil.DecodeEntry(&e, storeutil.EntryJSON{
		EvidenceRefs: []byte(refs), Objections: []byte(objs), ResponsiblePersons: []byte(persons),
		Lifecycle: []byte(lifecycle),
	}); err != nil {
		return policy.Entry{}, err
	}
	return e, nil
}
