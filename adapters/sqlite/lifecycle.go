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

// ApplyEntryChanges writes new entries, updated entries and violation
// records in one transaction. Entry history (entry_versions) is written by
// triggers; the proceedings index is rewritten here for every entry
// written.
func (s *Store) ApplyEntryChanges(ctx context.Context, c service.EntryChanges) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: apply entry changes: %w", err)
	}
	defer tx.Rollback()
	if err := insertEntriesTx(ctx, tx, c.Insert); err != nil {
		return fmt.Errorf("sqlite: apply entry changes: %w", err)
	}
	for _, e := range c.Update {
		if err := updateEntryTx(ctx, tx, e); err != nil {
			return fmt.Errorf("sqlite: apply entry changes: entry %q: %w", e.ID, err)
		}
	}
	for _, e := range append(c.Insert[:len(c.Insert):len(c.Insert)], c.Update...) {
		if err := writeProceedings(ctx, tx, storeutil.NormalizeEntry(e)); err != nil {
			return fmt.Errorf("sqlite: apply entry changes: entry %q: %w", e.ID, mapErr(err))
		}
	}
	if len(c.Records) > 0 {
		ins, err := tx.PrepareContext(ctx, `INSERT INTO violation_records (id, subject, subject_kind, rule_set, item,
			severity, decided_at, recorded_at, department, reference, evidence_refs, particularly_serious)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("sqlite: apply entry changes: %w", err)
		}
		defer ins.Close()
		for _, r := range c.Records {
			r = storeutil.NormalizeRecord(r)
			refs, err := storeutil.MarshalList(r.EvidenceRefs)
			if err != nil {
				return fmt.Errorf("sqlite: apply entry changes: record %q: %w", r.ID, err)
			}
			if _, err := ins.ExecContext(ctx, r.ID, r.Subject.Value, string(r.Subject.Kind), r.RuleSet, r.Item,
				r.Severity, micros(r.DecidedAt), micros(r.RecordedAt), r.Department, r.Reference, string(refs),
				r.ParticularlySerious); err != nil {
				return fmt.Errorf("sqlite: apply entry changes: record %q: %w", r.ID, mapErr(err))
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: apply entry changes: %w", mapErr(err))
	}
	return nil
}

// writeProceedings rewrites the proceedings index of e.
func writeProceedings(ctx context.Context, tx *sql.Tx, e policy.Entry) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM entry_proceedings WHERE entry_id = ?`, e.ID); err != nil {
		return err
	}
	for _, p := range storeutil.Proceedings(e) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO entry_proceedings (id, entry_id, kind, opened_at, due_at, closed_at)
			VALUES (?, ?, ?, ?, ?, ?)`, p.ID, e.ID, p.Kind, micros(p.OpenedAt), microsPtr(p.DueAt), microsPtr(p.ClosedAt)); err != nil {
			return err
		}
	}
	return nil
}

// EntryByProceeding returns the entry holding the objection, repair or
// exit application id.
func (s *Store) EntryByProceeding(ctx context.Context, id string) (policy.Entry, error) {
	e, err := scanEntry(s.r.QueryRowContext(ctx, `SELECT `+entrySelect+` FROM entries
		WHERE id = (SELECT entry_id FROM entry_proceedings WHERE id = ?)`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return policy.Entry{}, fmt.Errorf("sqlite: proceeding %q: %w", id, service.ErrNotFound)
	}
	if err != nil {
		return policy.Entry{}, fmt.Errorf("sqlite: proceeding %q: %w", id, err)
	}
	return e, nil
}

// OpenProceedings lists undecided proceedings of one kind, by id, with
// their entries. Proceedings of revoked entries are moot and left out.
func (s *Store) OpenProceedings(ctx context.Context, f service.ProceedingFilter) ([]service.Proceeding, error) {
	q := `SELECT p.id, p.due_at, ` + prefixed("e.", entrySelect) + `
		FROM entry_proceedings p JOIN entries e ON e.id = p.entry_id
		WHERE p.kind = ? AND p.closed_at IS NULL AND p.id > ? AND e.revoked_at IS NULL`
	args := []any{string(f.Kind), f.After}
	if !f.DueBefore.IsZero() {
		q += ` AND p.due_at <= ?`
		args = append(args, micros(f.DueBefore))
	}
	q += ` ORDER BY p.id LIMIT ?`
	args = append(args, storeutil.Limit(f.Limit))
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open proceedings: %w", err)
	}
	defer rows.Close()
	var out []service.Proceeding
	for rows.Next() {
		var (
			p   service.Proceeding
			due sql.NullInt64
		)
		e, err := scanEntry(prefixScanner{rows, []any{&p.ID, &due}})
		if err != nil {
			return nil, fmt.Errorf("sqlite: open proceedings: %w", err)
		}
		p.Kind, p.DueAt, p.Entry = f.Kind, fromMicrosPtr(due), e
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: open proceedings: %w", err)
	}
	return out, nil
}

// prefixScanner scans extra leading columns before an entry's.
type prefixScanner struct {
	rows  *sql.Rows
	extra []any
}

func (p prefixScanner) Scan(dest ...any) error { return p.rows.Scan(append(p.extra, dest...)...) }

// prefixed qualifies a column list with a table alias.
func prefixed(alias, columns string) string {
	parts := strings.Split(columns, ",")
	for i, c := range parts {
		parts[i] = alias + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// ViolationRecords returns the subject's records recorded at or before
// knownAt (all when zero), by decision time then id. Errors do not name
// the subject.
func (s *Store) ViolationRecords(ctx context.Context, subject string, knownAt time.Time) ([]policy.ViolationRecord, error) {
	known := int64(1<<63 - 1)
	if !knownAt.IsZero() {
		known = micros(knownAt)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, subject, subject_kind, rule_set, item, severity, decided_at,
		recorded_at, department, reference, evidence_refs, particularly_serious
		FROM violation_records WHERE subject = ? AND recorded_at <= ? ORDER BY decided_at, id LIMIT ?`,
		subject, known, service.MaxSubjectRecords+1)
	if err != nil {
		return nil, fmt.Errorf("sqlite: violation records: %w", err)
	}
	defer rows.Close()
	var out []policy.ViolationRecord
	for rows.Next() {
		var (
			r                 policy.ViolationRecord
			kind, refs        string
			decided, recorded int64
		)
		if err := rows.Scan(&r.ID, &r.Subject.Value, &kind, &r.RuleSet, &r.Item, &r.Severity, &decided, &recorded,
			&r.Department, &r.Reference, &refs, &r.ParticularlySerious); err != nil {
			return nil, fmt.Errorf("sqlite: violation records: %w", err)
		}
		r.Subject.Kind = policy.SubjectKind(kind)
		r.DecidedAt, r.RecordedAt = fromMicros(decided), fromMicros(recorded)
		if r.EvidenceRefs, err = storeutil.UnmarshalList[string]([]byte(refs)); err != nil {
			return nil, fmt.Errorf("sqlite: violation record %q: %w", r.ID, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: violation records: %w", err)
	}
	return out, nil
}

// versionSelect reads an entry version with the columns scanEntry expects.
const versionSelect = `v.id, v.subject, v.subject_kind, v.list, v.originating_department, v.reason, v.legal_basis,
	v.evidence_refs, v.decided_at, v.published_at, v.valid_until, v.revoked_at, v.revocation_reason,
	v.objections, v.responsible_persons, v.created_at, v.updated_at, v.version, v.lifecycle`

// EntriesAffectingAsOf returns, ordered by ID, the entries that named
// subject (as subject or responsible person) in any version, each in its
// latest version recorded at or before knownAt: what credgate knew then.
func (s *Store) EntriesAffectingAsOf(ctx context.Context, subject string, knownAt time.Time) ([]policy.Entry, error) {
	// The candidates come from two indexed lookups; each one's version is
	// found through (id, recorded_at, version).
	rows, err := s.r.QueryContext(ctx, `SELECT `+versionSelect+` FROM (
		    SELECT id FROM entry_versions WHERE subject = ?1
		    UNION
		    SELECT entry_id FROM entry_version_persons WHERE person_id = ?1) c
		JOIN entry_versions v ON v.id = c.id AND v.version = (
		    SELECT max(w.version) FROM entry_versions w WHERE w.id = c.id AND w.recorded_at <= ?2)
		ORDER BY v.id`, subject, micros(knownAt))
	if err != nil {
		return nil, fmt.Errorf("sqlite: entries affecting a subject as of a time: %w", err)
	}
	defer rows.Close()
	var out []policy.Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: entries affecting a subject as of a time: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
