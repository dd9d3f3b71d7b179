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

// ApplyEntryChanges writes new entries, updated entries and violation
// records in one transaction. Entry history (entry_versions) is written by
// triggers; the proceedings index is rewritten here for every entry
// written.
func (s *Store) ApplyEntryChanges(ctx context.Context, c service.EntryChanges) error {
	if err := s.db.InTx(ctx, func(tx Tx) error { return s.applyEntryChangesTx(ctx, tx, c) }); err != nil {
		return s.errf("apply entry changes: %w", err)
	}
	return nil
}

// applyEntryChangesTx is ApplyEntryChanges inside tx (a bulk load's
// commit writes its changes with the staged entries).
func (s *Store) applyEntryChangesTx(ctx context.Context, tx Tx, c service.EntryChanges) error {
	if err := s.insertEntriesTx(ctx, tx, c.Insert); err != nil {
		return err
	}
	for _, e := range c.Update {
		if err := s.updateEntryTx(ctx, tx, e); err != nil {
			return fmt.Errorf("entry %q: %w", e.ID, err)
		}
	}
	var stmts []Stmt
	for _, e := range append(c.Insert[:len(c.Insert):len(c.Insert)], c.Update...) {
		e = storeutil.NormalizeEntry(e)
		stmts = append(stmts, Stmt{`DELETE FROM entry_proceedings WHERE entry_id = $1`, []any{e.ID}})
		for _, p := range storeutil.Proceedings(e) {
			stmts = append(stmts, Stmt{`INSERT INTO entry_proceedings (id, entry_id, kind, opened_at, due_at, closed_at)
				VALUES ($1, $2, $3, $4, $5, $6)`, []any{p.ID, e.ID, p.Kind, p.OpenedAt, p.DueAt, p.ClosedAt}})
		}
	}
	for _, r := range c.Records {
		r = storeutil.NormalizeRecord(r)
		refs, err := storeutil.MarshalList(r.EvidenceRefs)
		if err != nil {
			return fmt.Errorf("record %q: %w", r.ID, err)
		}
		stmts = append(stmts, Stmt{`INSERT INTO violation_records (id, subject, subject_kind, rule_set, item,
			severity, decided_at, recorded_at, department, reference, evidence_refs, particularly_serious)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			[]any{r.ID, r.Subject.Value, string(r.Subject.Kind), r.RuleSet, r.Item, r.Severity, r.DecidedAt,
				r.RecordedAt, r.Department, r.Reference, string(refs), r.ParticularlySerious}})
	}
	if _, err := tx.ExecBatch(ctx, stmts); err != nil {
		return s.d.MapErr(err)
	}
	return nil
}

// EntryByProceeding returns the entry holding the objection, repair or
// exit application id.
func (s *Store) EntryByProceeding(ctx context.Context, id string) (policy.Entry, error) {
	e, err := scanEntry(s.db.QueryRow(ctx, `SELECT `+EntryColumns+` FROM entries
		WHERE id = (SELECT entry_id FROM entry_proceedings WHERE id = $1)`, id))
	if isNoRows(err) {
		return policy.Entry{}, fmt.Errorf("proceeding %q: %w", id, service.ErrNotFound)
	}
	if err != nil {
		return policy.Entry{}, s.errf("proceeding %q: %w", id, err)
	}
	return e, nil
}

// OpenProceedings lists undecided proceedings of one kind, by id, with
// their entries. Proceedings of revoked entries are moot and left out.
func (s *Store) OpenProceedings(ctx context.Context, f service.ProceedingFilter) ([]service.Proceeding, error) {
	q := `SELECT p.id, p.due_at, ` + prefixed("e.", EntryColumns) + `
		FROM entry_proceedings p JOIN entries e ON e.id = p.entry_id
		WHERE p.kind = $1 AND p.closed_at IS NULL AND p.id > $2 AND e.revoked_at IS NULL`
	args := []any{string(f.Kind), f.After}
	if !f.DueBefore.IsZero() {
		args = append(args, f.DueBefore)
		q += ` AND p.due_at <= $3`
	}
	args = append(args, storeutil.Limit(f.Limit))
	q += ` ORDER BY p.id LIMIT $` + strconv.Itoa(len(args))
	rows, err := s.db.Query(ctx, q, args...)
	out, err := collect(rows, err, func(r Rows) (service.Proceeding, error) {
		p := service.Proceeding{Kind: f.Kind}
		e, err := scanEntry(r, &p.ID, &p.DueAt)
		p.Entry, p.DueAt = e, storeutil.TimePtr(p.DueAt)
		return p, err
	})
	if err != nil {
		return nil, s.errf("open proceedings: %w", err)
	}
	return out, nil
}

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
	q := `SELECT id, subject, subject_kind, rule_set, item, severity, decided_at,
		recorded_at, department, reference, evidence_refs, particularly_serious
		FROM violation_records WHERE subject = $1`
	args := []any{subject}
	if !knownAt.IsZero() {
		args = append(args, knownAt)
		q += ` AND recorded_at <= $2`
	}
	args = append(args, service.MaxSubjectRecords+1)
	q += ` ORDER BY decided_at, id LIMIT $` + strconv.Itoa(len(args))
	rows, err := s.db.Query(ctx, q, args...)
	out, err := collect(rows, err, func(row Rows) (policy.ViolationRecord, error) {
		var (
			r    policy.ViolationRecord
			kind string
			refs []byte
		)
		if err := row.Scan(&r.ID, &r.Subject.Value, &kind, &r.RuleSet, &r.Item, &r.Severity, &r.DecidedAt,
			&r.RecordedAt, &r.Department, &r.Reference, &refs, &r.ParticularlySerious); err != nil {
			return r, err
		}
		r.Subject.Kind = policy.SubjectKind(kind)
		var err error
		if r.EvidenceRefs, err = storeutil.UnmarshalList[string](refs); err != nil {
			return r, fmt.Errorf("violation record %q: %w", r.ID, err)
		}
		return storeutil.NormalizeRecord(r), nil
	})
	if err != nil {
		return nil, s.errf("violation records: %w", err)
	}
	return out, nil
}
