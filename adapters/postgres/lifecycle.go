package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/adapters/internal/storeutil"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// ApplyEntryChanges writes new entries, updated entries and violation
// records in one transaction. Entry history (entry_versions) is written by
// triggers; the proceedings index is rewritten here for every entry
// written.
func (s *Store) ApplyEntryChanges(ctx context.Context, c service.EntryChanges) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := insertEntriesTx(ctx, tx, c.Insert); err != nil {
			return err
		}
		for _, e := range c.Update {
			if err := updateEntryTx(ctx, tx, e); err != nil {
				return fmt.Errorf("entry %q: %w", e.ID, err)
			}
		}
		b := &pgx.Batch{}
		for _, e := range append(c.Insert[:len(c.Insert):len(c.Insert)], c.Update...) {
			e = storeutil.NormalizeEntry(e)
			b.Queue(`DELETE FROM entry_proceedings WHERE entry_id = $1`, e.ID)
			for _, p := range storeutil.Proceedings(e) {
				b.Queue(`INSERT INTO entry_proceedings (id, entry_id, kind, opened_at, due_at, closed_at)
					VALUES ($1, $2, $3, $4, $5, $6)`, p.ID, e.ID, p.Kind, p.OpenedAt, p.DueAt, p.ClosedAt)
			}
		}
		for _, r := range c.Records {
			r = storeutil.NormalizeRecord(r)
			refs, err := storeutil.MarshalList(r.EvidenceRefs)
			if err != nil {
				return fmt.Errorf("record %q: %w", r.ID, err)
			}
			b.Queue(`INSERT INTO violation_records (id, subject, subject_kind, rule_set, item, severity, decided_at,
				recorded_at, department, reference, evidence_refs, particularly_serious)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
				r.ID, r.Subject.Value, string(r.Subject.Kind), r.RuleSet, r.Item, r.Severity, r.DecidedAt,
				r.RecordedAt, r.Department, r.Reference, string(refs), r.ParticularlySerious)
		}
		br := tx.SendBatch(ctx, b)
		for range b.Len() {
			if _, err := br.Exec(); err != nil {
				br.Close()
				return mapErr(err)
			}
		}
		return br.Close()
	})
	if err != nil {
		return fmt.Errorf("postgres: apply entry changes: %w", err)
	}
	return nil
}

// EntryByProceeding returns the entry holding the objection, repair or
// exit application id.
func (s *Store) EntryByProceeding(ctx context.Context, id string) (policy.Entry, error) {
	e, err := scanEntry(s.pool.QueryRow(ctx, `SELECT `+entrySelect+` FROM entries
		WHERE id = (SELECT entry_id FROM entry_proceedings WHERE id = $1)`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return policy.Entry{}, fmt.Errorf("postgres: proceeding %q: %w", id, service.ErrNotFound)
	}
	if err != nil {
		return policy.Entry{}, fmt.Errorf("postgres: proceeding %q: %w", id, err)
	}
	return e, nil
}

// OpenProceedings lists undecided proceedings of one kind, by id, with
// their entries. Proceedings of revoked entries are moot and left out.
func (s *Store) OpenProceedings(ctx context.Context, f service.ProceedingFilter) ([]service.Proceeding, error) {
	q := `SELECT p.id, p.due_at, ` + prefixed("e.", entrySelect) + `
		FROM entry_proceedings p JOIN entries e ON e.id = p.entry_id
		WHERE p.kind = $1 AND p.closed_at IS NULL AND p.id > $2 AND e.revoked_at IS NULL`
	args := []any{string(f.Kind), f.After}
	if !f.DueBefore.IsZero() {
		args = append(args, f.DueBefore)
		q += ` AND p.due_at <= $3`
	}
	args = append(args, storeutil.Limit(f.Limit))
	q += fmt.Sprintf(` ORDER BY p.id LIMIT $%d`, len(args))
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: open proceedings: %w", err)
	}
	defer rows.Close()
	var out []service.Proceeding
	for rows.Next() {
		var p service.Proceeding
		e, err := scanEntry(prefixRow{rows, []any{&p.ID, &p.DueAt}})
		if err != nil {
			return nil, fmt.Errorf("postgres: open proceedings: %w", err)
		}
		if p.DueAt != nil {
			p.DueAt = storeutil.TimePtr(p.DueAt)
		}
		p.Kind, p.Entry = f.Kind, e
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: open proceedings: %w", err)
	}
	return out, nil
}

// prefixRow scans extra leading columns before an entry's.
type prefixRow struct {
	rows  pgx.Rows
	extra []any
}

func (p prefixRow) Scan(dest ...any) error { return p.rows.Scan(append(p.extra, dest...)...) }

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
	known := time.UnixMicro(math.MaxInt64 / 2)
	if !knownAt.IsZero() {
		known = knownAt
	}
	rows, err := s.pool.Query(ctx, `SELECT id, subject, subject_kind, rule_set, item, severity, decided_at,
		recorded_at, department, reference, evidence_refs, particularly_serious
		FROM violation_records WHERE subject = $1 AND recorded_at <= $2 ORDER BY decided_at, id LIMIT $3`,
		subject, known, service.MaxSubjectRecords+1)
	if err != nil {
		return nil, fmt.Errorf("postgres: violation records: %w", err)
	}
	defer rows.Close()
	var out []policy.ViolationRecord
	for rows.Next() {
		var (
			r    policy.ViolationRecord
			kind string
			refs []byte
		)
		if err := rows.Scan(&r.ID, &r.Subject.Value, &kind, &r.RuleSet, &r.Item, &r.Severity, &r.DecidedAt,
			&r.RecordedAt, &r.Department, &r.Reference, &refs, &r.ParticularlySerious); err != nil {
			return nil, fmt.Errorf("postgres: violation records: %w", err)
		}
		r.Subject.Kind = policy.SubjectKind(kind)
		if r.EvidenceRefs, err = storeutil.UnmarshalList[string](refs); err != nil {
			return nil, fmt.Errorf("postgres: violation record %q: %w", r.ID, err)
		}
		out = append(out, storeutil.NormalizeRecord(r))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: violation records: %w", err)
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
// The candidates come from two indexed lookups; each one's version is one
// backward probe of the primary key (a lateral join: a DISTINCT ON over
// the candidates' versions lets the planner scan the history instead).
func (s *Store) EntriesAffectingAsOf(ctx context.Context, subject string, knownAt time.Time) ([]policy.Entry, error) {
	out, err := s.queryEntries(ctx, `SELECT `+versionSelect+` FROM (
			SELECT id FROM entry_versions WHERE subject = $1
			UNION
			SELECT entry_id FROM entry_version_persons WHERE person_id = $1) c
		CROSS JOIN LATERAL (SELECT * FROM entry_versions w WHERE w.id = c.id AND w.recorded_at <= $2
			ORDER BY w.version DESC LIMIT 1) v
		ORDER BY v.id`, subject, knownAt)
	if err != nil {
		return nil, fmt.Errorf("postgres: entries affecting a subject as of a time: %w", err)
	}
	return out, nil
}
