package sqlcommon

import (
	"context"

	"github.com/credgate/credgate/adapters/internal/storeutil"
	"github.com/credgate/credgate/service"
)

var _ service.CheckFinder = (*Store)(nil)

// FindChecks searches the check index newest first, by (checked_at, idx)
// descending: each index that serves a filter ends in that order (SQLite's
// check_index_partner and check_index_action hold (…, checked_at, idx),
// idx being the rowid; PostgreSQL's check_index_partner (partner,
// checked_at) is read backward with idx as an incremental sort's tie
// break, and the checks of a period without a partner come from the BRIN
// check_index_time), so a page reads the period's matching entries at
// most, never every check. The subject is not read.
func (s *Store) FindChecks(ctx context.Context, q service.CheckQuery) ([]service.FoundCheck, error) {
	var a args
	w := `c.checked_at >= ` + a.add(storeutil.Time(q.From)) + ` AND c.checked_at < ` + a.add(storeutil.Time(q.To))
	if q.Partner != "" {
		w += ` AND c.partner = ` + a.add(q.Partner)
	}
	if q.Action != "" {
		w += ` AND c.action = ` + a.add(q.Action)
	}
	if q.Outcome != "" {
		w += ` AND c.outcome = ` + a.add(q.Outcome)
	}
	if q.After != nil {
		// checked_at <= alone is the index's range; the rest tells ties.
		at := a.add(storeutil.Time(q.After.CheckedAt))
		w += ` AND c.checked_at <= ` + at + ` AND (c.checked_at < ` + at + ` OR c.idx < ` + a.add(q.After.Index) + `)`
	}
	rows, err := s.db.Query(ctx, `SELECT c.check_id, c.idx, c.partner, c.action, c.outcome, c.region, c.checked_at
		FROM check_index c WHERE `+w+` ORDER BY c.checked_at DESC, c.idx DESC LIMIT `+a.add(storeutil.Limit(q.Limit)), a...)
	out, err := collect(rows, err, func(r Rows) (service.FoundCheck, error) {
		var c service.FoundCheck
		err := r.Scan(&c.CheckID, &c.LogIndex, &c.Partner, &c.Action, &c.Outcome, &c.Region, &c.CheckedAt)
		c.CheckedAt = c.CheckedAt.UTC()
		return c, err
	})
	if err != nil {
		return nil, s.errf("search checks: %w", err)
	}
	return out, nil
}
