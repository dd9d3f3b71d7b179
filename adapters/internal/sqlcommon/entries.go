package sqlcommon

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/credgate/credgate/adapters/internal/storeutil"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// EntryColumns are the columns every writer of entries sets, in the order
// scanEntry reads them, followed by the lifecycle document (0003).
const EntryColumns = `id, subject, subject_kind, list, originating_department, reason, legal_basis,
	evidence_refs, decided_at, published_at, valid_until, revoked_at, revocation_reason,
	objections, responsible_persons, created_at, updated_at, version, lifecycle`

// AffectingSQL selects the entries on subject $1 or naming $1 among their
// responsible persons: two indexed lookups in one query.
const AffectingSQL = `SELECT ` + EntryColumns + ` FROM entries WHERE id IN (
		SELECT id FROM entries WHERE subject = $1
		UNION
		SELECT entry_id FROM entry_persons WHERE person_id = $1
	) ORDER BY id`

// VersionColumns reads an entry version (alias v) with the columns
// scanEntry expects.
const VersionColumns = `v.id, v.subject, v.subject_kind, v.list, v.originating_department, v.reason, v.legal_basis,
	v.evidence_refs, v.decided_at, v.published_at, v.valid_until, v.revoked_at, v.revocation_reason,
	v.objections, v.responsible_persons, v.created_at, v.updated_at, v.version, v.lifecycle`

const insertEntrySQL = `INSERT INTO entries (` + EntryColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`

const insertLinkSQL = `INSERT INTO entry_persons (entry_id, person_id, role) VALUES ($1, $2, $3)`

// InsertEntries stores all entries in one transaction, or none of them.
func (s *Store) InsertEntries(ctx context.Context, entries []policy.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	if err := s.db.InTx(ctx, func(tx Tx) error { return s.insertEntriesTx(ctx, tx, entries) }); err != nil {
		return s.errf("insert entries: %w", err)
	}
	return nil
}

// insertEntriesTx inserts entries and their person links inside tx, in one
// batch (one round trip on PostgreSQL).
func (s *Store) insertEntriesTx(ctx context.Context, tx Tx, entries []policy.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	var (
		stmts []Stmt
		owner []string // entry of each statement, for errors
	)
	for _, e := range entries {
		e = storeutil.NormalizeEntry(e)
		j, err := storeutil.EncodeEntry(e)
		if err != nil {
			return err
		}
		stmts = append(stmts, Stmt{insertEntrySQL, []any{e.ID, e.Subject.Value, string(e.Subject.Kind), e.List,
			e.OriginatingDepartment, e.Reason, e.LegalBasis, string(j.EvidenceRefs),
			e.DecidedAt, e.PublishedAt, e.ValidUntil, e.RevokedAt, e.RevocationReason,
			string(j.Objections), string(j.ResponsiblePersons), e.CreatedAt, e.UpdatedAt, e.Version,
			string(j.Lifecycle)}})
		owner = append(owner, e.ID)
		for _, l := range storeutil.PersonLinks(e) {
			stmts = append(stmts, Stmt{insertLinkSQL, []any{e.ID, l.PersonID, string(l.Role)}})
			owner = append(owner, e.ID)
		}
	}
	if i, err := tx.ExecBatch(ctx, stmts); err != nil {
		return fmt.Errorf("entry %q: %w", owner[i], s.d.MapErr(err))
	}
	return nil
}

// GetEntry returns the entry with the given ID, or service.ErrNotFound.
func (s *Store) GetEntry(ctx context.Context, id string) (policy.Entry, error) {
	e, err := scanEntry(s.db.QueryRow(ctx, `SELECT `+EntryColumns+` FROM entries WHERE id = $1`, id))
	if isNoRows(err) {
		return policy.Entry{}, fmt.Errorf("entry %q: %w", id, service.ErrNotFound)
	}
	if err != nil {
		return policy.Entry{}, s.errf("get entry %q: %w", id, err)
	}
	return e, nil
}

// UpdateEntry replaces the entry whose stored version is e.Version-1 and
// rewrites its person index in the same transaction.
func (s *Store) UpdateEntry(ctx context.Context, e policy.Entry) error {
	if err := s.db.InTx(ctx, func(tx Tx) error { return s.updateEntryTx(ctx, tx, e) }); err != nil {
		return s.errf("update entry %q: %w", e.ID, err)
	}
	return nil
}

// updateEntryTx is UpdateEntry inside tx (ApplyEntryChanges uses it too).
func (s *Store) updateEntryTx(ctx context.Context, tx Tx, e policy.Entry) error {
	e = storeutil.NormalizeEntry(e)
	j, err := storeutil.EncodeEntry(e)
	if err != nil {
		return err
	}
	n, err := tx.Exec(ctx, `UPDATE entries SET
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
		return s.d.MapErr(err)
	}
	if err := checkUpdated(ctx, tx, n, "entries", e.ID); err != nil {
		return err
	}
	stmts := []Stmt{{`DELETE FROM entry_persons WHERE entry_id = $1`, []any{e.ID}}}
	for _, l := range storeutil.PersonLinks(e) {
		stmts = append(stmts, Stmt{insertLinkSQL, []any{e.ID, l.PersonID, string(l.Role)}})
	}
	if _, err := tx.ExecBatch(ctx, stmts); err != nil {
		return s.d.MapErr(err)
	}
	return nil
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
	q := `SELECT ` + EntryColumns + ` FROM entries`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY id LIMIT ` + arg(storeutil.Limit(f.Limit))
	out, err := s.queryEntries(ctx, q, args...)
	if err != nil {
		return nil, s.errf("list entries: %w", err)
	}
	return out, nil
}

// EntriesAffecting returns, ordered by ID, the entries on subject and the
// entries naming subject as a responsible person. Errors do not name the
// subject, which may be personal data.
func (s *Store) EntriesAffecting(ctx context.Context, subject string) ([]policy.Entry, error) {
	out, err := s.queryEntries(ctx, AffectingSQL, subject)
	if err != nil {
		return nil, s.errf("entries affecting a subject: %w", err)
	}
	return out, nil
}

// EntriesAffectingAsOf returns, ordered by ID, the entries that named
// subject (as subject or responsible person) in any version, each in its
// latest version recorded at or before knownAt: what credgate knew then.
func (s *Store) EntriesAffectingAsOf(ctx context.Context, subject string, knownAt time.Time) ([]policy.Entry, error) {
	out, err := s.queryEntries(ctx, s.d.AsOfSQL, subject, knownAt)
	if err != nil {
		return nil, s.errf("entries affecting a subject as of a time: %w", err)
	}
	return out, nil
}

func (s *Store) queryEntries(ctx context.Context, q string, args ...any) ([]policy.Entry, error) {
	rows, err := s.db.Query(ctx, q, args...)
	return collect(rows, err, func(r Rows) (policy.Entry, error) { return scanEntry(r) })
}

func scanEntry(row Row, extra ...any) (policy.Entry, error) {
	var (
		e                              policy.Entry
		kind                           string
		refs, objs, persons, lifecycle []byte
	)
	dest := append(extra, &e.ID, &e.Subject.Value, &kind, &e.List, &e.OriginatingDepartment, &e.Reason,
		&e.LegalBasis, &refs, &e.DecidedAt, &e.PublishedAt, &e.ValidUntil, &e.RevokedAt, &e.RevocationReason,
		&objs, &persons, &e.CreatedAt, &e.UpdatedAt, &e.Version, &lifecycle)
	if err := row.Scan(dest...); err != nil {
		return policy.Entry{}, err
	}
	e.Subject.Kind = policy.SubjectKind(kind)
	// DecodeEntry also brings every time to UTC.
	if err := storeutil.DecodeEntry(&e, storeutil.EntryJSON{
		EvidenceRefs: refs, Objections: objs, ResponsiblePersons: persons, Lifecycle: lifecycle,
	}); err != nil {
		return policy.Entry{}, err
	}
	return e, nil
}

// ListedSubjectsSQL names every subject that EntriesAffecting can find
// an entry for: the subject of every entry and every responsible person
// named. A subject comes once per entry (the reader only adds them to a
// set, and removing duplicates would cost the database a sort or a hash
// of the whole table).
const ListedSubjectsSQL = `SELECT subject FROM entries UNION ALL SELECT person_id FROM entry_persons`

// ListedSubjects calls fn with every subject that EntriesAffecting can
// find an entry for, some more than once, as the rows arrive (nothing is
// held): a subject it never names has no entry now. It stops at fn's
// first error and returns it. Errors do not name a subject.
func (s *Store) ListedSubjects(ctx context.Context, fn func(subject string) error) error {
	rows, err := s.db.Query(ctx, ListedSubjectsSQL)
	if err != nil {
		return s.errf("listed subjects: %w", err)
	}
	defer rows.Close()
	var subject string
	for rows.Next() {
		if err := rows.Scan(&subject); err != nil {
			return s.errf("listed subjects: %w", err)
		}
		if err := fn(subject); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return s.errf("listed subjects: %w", err)
	}
	return nil
}

// LookupEntries is EntriesAffecting as the check path reads it: read now,
// so with a zero AsOf (service.Lookup).
func (s *Store) LookupEntries(ctx context.Context, subject string) (service.Lookup, error) {
	entries, err := s.EntriesAffecting(ctx, subject)
	if err != nil {
		return service.Lookup{}, err
	}
	return service.Lookup{Entries: entries}, nil
}
