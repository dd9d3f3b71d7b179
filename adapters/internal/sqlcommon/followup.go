package sqlcommon

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/credgate/credgate/adapters/internal/storeutil"
	"github.com/credgate/credgate/service"
)

// Reads of the tables migration 0010 derives from the evidence log: the
// check index, feedback and commitments (service.FollowUpStore).

var _ service.FollowUpStore = (*Store)(nil)

const checkColumns = `c.check_id, c.idx, c.partner, c.subject, c.action, c.outcome, c.region, c.checked_at`

func scanCheck(r Rows) (service.IndexedCheck, error) {
	var c service.IndexedCheck
	err := r.Scan(&c.CheckID, &c.Index, &c.Partner, &c.Subject, &c.Action, &c.Outcome, &c.Region, &c.CheckedAt)
	c.CheckedAt = c.CheckedAt.UTC()
	return c, err
}

// IndexedCheck returns one check of the index.
func (s *Store) IndexedCheck(ctx context.Context, checkID string) (service.IndexedCheck, error) {
	rows, err := s.db.Query(ctx, `SELECT `+checkColumns+` FROM check_index c WHERE `+s.d.checkByID("$1"), checkID)
	out, err := collect(rows, err, scanCheck)
	if err != nil {
		return service.IndexedCheck{}, s.errf("read check %q: %w", checkID, err)
	}
	if len(out) == 0 {
		return service.IndexedCheck{}, fmt.Errorf("check %q: %w", checkID, service.ErrNotFound)
	}
	return out[0], nil
}

const feedbackColumns = `feedback_id, idx, check_id, partner, decision, applied, not_applied, recorded_at, late`

func scanFeedback(r Rows) (service.FeedbackRow, error) {
	var f service.FeedbackRow
	var applied, notApplied int64
	err := r.Scan(&f.ID, &f.Index, &f.CheckID, &f.Partner, &f.Decision, &applied, &notApplied, &f.RecordedAt, &f.Late)
	f.Applied, f.NotApplied, f.RecordedAt = int(applied), int(notApplied), f.RecordedAt.UTC()
	return f, err
}

// FeedbackOf returns a check's feedback in log order.
func (s *Store) FeedbackOf(ctx context.Context, checkID string) ([]service.FeedbackRow, error) {
	rows, err := s.db.Query(ctx, `SELECT `+feedbackColumns+` FROM feedback WHERE check_id = $1 ORDER BY idx LIMIT $2`,
		checkID, service.MaxPage)
	out, err := collect(rows, err, scanFeedback)
	if err != nil {
		return nil, s.errf("read feedback of %q: %w", checkID, err)
	}
	return out, nil
}

// ListFeedback lists feedback records in log order.
func (s *Store) ListFeedback(ctx context.Context, f service.FeedbackFilter) ([]service.FeedbackRow, error) {
	q := `SELECT ` + feedbackColumns + ` FROM feedback WHERE idx > $1`
	args := []any{f.After}
	if f.Partner != "" {
		args = append(args, f.Partner)
		q += ` AND partner = $2`
	}
	args = append(args, storeutil.Limit(f.Limit))
	q += ` ORDER BY idx LIMIT $` + strconv.Itoa(len(args))
	rows, err := s.db.Query(ctx, q, args...)
	out, err := collect(rows, err, scanFeedback)
	if err != nil {
		return nil, s.errf("list feedback: %w", err)
	}
	return out, nil
}

// args numbers query arguments as they are added.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// staffSQL is the condition that check c was made by an administrator or
// an auditor (their own look at a subject, not a platform deciding an
// application): no feedback is expected of them.
const staffSQL = `c.partner IN (SELECT p.client_id FROM partners p WHERE p.role IN ('admin', 'auditor'))`

// overdueSQL is the condition of an overdue check: an answer that applied
// measures, made by a partner (not staffSQL) before its action's cutoff,
// without feedback.
func overdueSQL(a *args, cutoffs []service.ActionCutoff) string {
	var groups []string
	for _, g := range cutoffs {
		if len(g.Actions) == 0 {
			continue
		}
		ph := make([]string, len(g.Actions))
		for i, act := range g.Actions {
			ph[i] = a.add(act)
		}
		groups = append(groups, `(c.action IN (`+strings.Join(ph, ", ")+`) AND c.checked_at < `+a.add(storeutil.Time(g.Before))+`)`)
	}
	if len(groups) == 0 {
		return `1 = 0`
	}
	return `c.outcome NOT IN ('clear', 'unverifiable') AND (` + strings.Join(groups, " OR ") + `)
		AND NOT EXISTS (SELECT 1 FROM feedback f WHERE f.check_id = c.check_id) AND NOT ` + staffSQL
}

// OverdueChecks lists the checks whose feedback is overdue, in log order.
func (s *Store) OverdueChecks(ctx context.Context, f service.OverdueFilter) ([]service.IndexedCheck, error) {
	var a args
	q := `SELECT ` + checkColumns + ` FROM check_index c WHERE c.idx > ` + a.add(f.After)
	if f.Partner != "" {
		q += ` AND c.partner = ` + a.add(f.Partner)
	}
	q += ` AND ` + overdueSQL(&a, f.Cutoffs)
	q += ` ORDER BY c.idx LIMIT ` + a.add(storeutil.Limit(f.Limit))
	rows, err := s.db.Query(ctx, q, a...)
	out, err := collect(rows, err, scanCheck)
	if err != nil {
		return nil, s.errf("list overdue checks: %w", err)
	}
	return out, nil
}

// statsParts are the pieces of a statistics query: the key of its group
// (k), the tables, and the condition on checks.
type statsParts struct {
	key, from, where string
	total            bool
}

func statsSQL(a *args, q service.StatsQuery) (statsParts, error) {
	p := statsParts{from: ` FROM check_index c`}
	switch q.By {
	case service.StatsTotal:
		p.key, p.total = `''`, true
	case service.StatsPartner:
		p.key = `c.partner`
	case service.StatsAction:
		p.key = `c.action`
	case service.StatsRegion:
		p.key = `c.region`
	case service.StatsList:
		p.from += ` JOIN check_lists l ON l.check_id = c.check_id`
		p.key = `l.list`
	default:
		return p, fmt.Errorf("unknown grouping %q", q.By)
	}
	p.where = ` WHERE c.checked_at >= ` + a.add(storeutil.Time(q.From)) + ` AND c.checked_at < ` + a.add(storeutil.Time(q.To))
	if q.Partner != "" {
		p.where += ` AND c.partner = ` + a.add(q.Partner)
	}
	return p, nil
}

// groupBy groups by the key and then more columns (none for a total).
func (p statsParts) groupBy(more string) string {
	switch {
	case p.total && more == "":
		return ""
	case p.total:
		return ` GROUP BY ` + more + ` ORDER BY ` + more
	case more == "":
		return ` GROUP BY k ORDER BY k`
	}
	return ` GROUP BY k, ` + more + ` ORDER BY k, ` + more
}

// CheckStats counts checks by group and outcome, with their current
// feedback.
func (s *Store) CheckStats(ctx context.Context, q service.StatsQuery) ([]service.StatsRow, error) {
	var a args
	p, err := statsSQL(&a, q)
	if err != nil {
		return nil, s.errf("statistics: %w", err)
	}
	// The current feedback of a check is its last (corrections append);
	// whether it was late is its first's: a correction sent after the due
	// time does not make feedback given in time late. A staff check's
	// feedback is expected of no one, and is not late either. The first's
	// late is a scalar subquery, not a second join: with a second join
	// SQLite's planner left the time range and scanned check_index whole.
	sql := `SELECT ` + p.key + ` AS k, c.outcome, count(*), count(f.feedback_id), coalesce(sum(f.applied), 0),
		coalesce(sum(f.not_applied), 0), count(CASE WHEN f.decision IN ('approved', 'approved_with_conditions') THEN 1 END),
		count(CASE WHEN ` + staffSQL + ` THEN 1 END),
		count(CASE WHEN (SELECT g.late FROM feedback g WHERE g.check_id = c.check_id ORDER BY g.idx LIMIT 1) AND NOT ` + staffSQL + ` THEN 1 END)` +
		p.from + ` LEFT JOIN feedback f ON f.check_id = c.check_id
		AND f.idx = (SELECT max(g.idx) FROM feedback g WHERE g.check_id = c.check_id)` + p.where + p.groupBy(`c.outcome`)
	rows, err := s.db.Query(ctx, sql, a...)
	out, err := collect(rows, err, func(r Rows) (service.StatsRow, error) {
		var v service.StatsRow
		err := r.Scan(&v.Key, &v.Outcome, &v.Checks, &v.WithFeedback, &v.Applied, &v.NotApplied, &v.Approved, &v.Staff, &v.Late)
		return v, err
	})
	if err != nil {
		return nil, s.errf("statistics: %w", err)
	}
	return out, nil
}

// OverdueCounts counts overdue checks by group.
func (s *Store) OverdueCounts(ctx context.Context, q service.StatsQuery, cutoffs []service.ActionCutoff) (map[string]int64, error) {
	var a args
	p, err := statsSQL(&a, q)
	if err != nil {
		return nil, s.errf("overdue statistics: %w", err)
	}
	sql := `SELECT ` + p.key + ` AS k, count(*)` + p.from + p.where + ` AND ` + overdueSQL(&a, cutoffs) + p.groupBy("")
	rows, err := s.db.Query(ctx, sql, a...)
	type kv struct {
		k string
		n int64
	}
	out, err := collect(rows, err, func(r Rows) (kv, error) {
		var v kv
		err := r.Scan(&v.k, &v.n)
		return v, err
	})
	if err != nil {
		return nil, s.errf("overdue statistics: %w", err)
	}
	m := make(map[string]int64, len(out))
	for _, v := range out {
		if v.n > 0 {
			m[v.k] += v.n
		}
	}
	return m, nil
}

// currentCheckSQL is the condition on a check's record e that it is a
// check of the time it was made. A check that asked about the subject's
// standing at a past time (valid_at) says nothing of its standing when an
// approval was decided, so it neither counts as the check before an
// approval nor takes the place of an earlier current check as the last
// one. check_index does not tell them apart (it derives no valid_at, and
// the check path derives its rows without reading the body: checkrows.go);
// each candidate's body is read here instead, by its primary key, which
// costs the coverage run and nothing else. Only credgate's encoding of a
// check (answer_json.go) writes the member valid_at, at the top level.
func (s *Store) currentCheckSQL() string {
	if s.d.Name == "postgres" {
		return `position(convert_to('"valid_at":', 'UTF8') in e.body) = 0`
	}
	return `instr(e.body, CAST('"valid_at":' AS BLOB)) = 0`
}

// LastChecks answers the probes with one query of index probes (each the
// last check of a subject for an action before a time, of the time it was
// made (currentCheckSQL): one descent of check_index_subject) and one read
// of the checks found, by idx (the key of SQLite's check_index, an index
// of PostgreSQL's).
func (s *Store) LastChecks(ctx context.Context, partner string, probes []service.CheckProbe) ([]service.ProbeHit, error) {
	if len(probes) > service.MaxProbes {
		return nil, s.errf("%d probes, at most %d", len(probes), service.MaxProbes)
	}
	out := make([]service.ProbeHit, len(probes))
	if len(probes) == 0 {
		return out, nil
	}
	var a args
	byPartner := ""
	if partner != "" {
		byPartner = ` AND c.partner = ` + a.add(partner)
	}
	parts := make([]string, len(probes))
	current := s.currentCheckSQL()
	for i, p := range probes {
		parts[i] = `SELECT ` + strconv.Itoa(i) + `, (SELECT c.idx FROM check_index c JOIN evidence e ON e.idx = c.idx WHERE c.subject = ` +
			a.add(p.Subject) + ` AND c.action = ` + a.add(p.Action) + ` AND c.checked_at <= ` + a.add(storeutil.Time(p.At)) +
			` AND c.checked_at > ` + a.add(storeutil.Time(p.Since)) + byPartner + ` AND ` + current +
			` ORDER BY c.checked_at DESC LIMIT 1)`
	}
	type hit struct {
		n   int64
		idx *int64
	}
	rows, err := s.db.Query(ctx, strings.Join(parts, " UNION ALL "), a...)
	hits, err := collect(rows, err, func(r Rows) (hit, error) {
		var h hit
		err := r.Scan(&h.n, &h.idx)
		return h, err
	})
	if err != nil {
		return nil, s.errf("probe checks: %w", err)
	}
	var ids args
	at := map[int64][]int{}
	var ph []string
	for _, h := range hits {
		if h.idx == nil {
			continue
		}
		if _, seen := at[*h.idx]; !seen {
			ph = append(ph, ids.add(*h.idx))
		}
		at[*h.idx] = append(at[*h.idx], int(h.n))
	}
	if len(ph) == 0 {
		return out, nil
	}
	rows, err = s.db.Query(ctx, `SELECT `+checkColumns+`,
		coalesce((SELECT f.decision FROM feedback f WHERE f.check_id = c.check_id ORDER BY f.idx DESC LIMIT 1), '')
		FROM check_index c WHERE c.idx IN (`+strings.Join(ph, ", ")+`)`, ids...)
	found, err := collect(rows, err, func(r Rows) (service.ProbeHit, error) {
		var c service.IndexedCheck
		var h service.ProbeHit
		err := r.Scan(&c.CheckID, &c.Index, &c.Partner, &c.Subject, &c.Action, &c.Outcome, &c.Region, &c.CheckedAt, &h.Decision)
		c.CheckedAt = c.CheckedAt.UTC()
		h.Check = &c
		return h, err
	})
	if err != nil {
		return nil, s.errf("read probed checks: %w", err)
	}
	for _, h := range found {
		for _, i := range at[h.Check.Index] {
			out[i] = h
		}
	}
	return out, nil
}

const commitmentColumns = `id, idx, partner, subject, kind, check_id, proceeding_id, due, state, state_record, state_at, recorded_at`

func scanCommitment(r Rows) (service.CommitmentRow, error) {
	var c service.CommitmentRow
	var stateAt *time.Time
	err := r.Scan(&c.ID, &c.Index, &c.Partner, &c.Subject, &c.Kind, &c.CheckID, &c.ProceedingID, &c.Due, &c.State,
		&c.StateRecord, &stateAt, &c.RecordedAt)
	if stateAt != nil {
		t := stateAt.UTC()
		c.StateAt = &t
	}
	c.RecordedAt = c.RecordedAt.UTC()
	return c, err
}

// Commitment returns one commitment.
func (s *Store) Commitment(ctx context.Context, id string) (service.CommitmentRow, error) {
	rows, err := s.db.Query(ctx, `SELECT `+commitmentColumns+` FROM commitments WHERE id = $1`, id)
	out, err := collect(rows, err, scanCommitment)
	if err != nil {
		return service.CommitmentRow{}, s.errf("read commitment %q: %w", id, err)
	}
	if len(out) == 0 {
		return service.CommitmentRow{}, fmt.Errorf("commitment %q: %w", id, service.ErrNotFound)
	}
	return out[0], nil
}

// ListCommitments lists commitments by id.
func (s *Store) ListCommitments(ctx context.Context, f service.CommitmentFilter) ([]service.CommitmentRow, error) {
	var a args
	q := `SELECT ` + commitmentColumns + ` FROM commitments WHERE id > ` + a.add(f.After)
	if f.Partner != "" {
		q += ` AND partner = ` + a.add(f.Partner)
	}
	if f.Subject != "" {
		q += ` AND subject = ` + a.add(f.Subject)
	}
	if f.State != "" {
		q += ` AND state = ` + a.add(f.State)
	}
	if f.DueBefore != "" {
		q += ` AND due < ` + a.add(f.DueBefore)
	}
	q += ` ORDER BY id LIMIT ` + a.add(storeutil.Limit(f.Limit))
	rows, err := s.db.Query(ctx, q, a...)
	out, err := collect(rows, err, scanCommitment)
	if err != nil {
		return nil, s.errf("list commitments: %w", err)
	}
	return out, nil
}
