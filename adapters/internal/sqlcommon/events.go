package sqlcommon

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/credgate/credgate/adapters/internal/storeutil"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// Push (0011): the outbox the entry triggers fill, subscriptions
// (subjects checked, read from check_index; watchlists) and events
// (webhooks and deliveries: deliveries.go). Lists of values travel as one
// JSON array parameter, unpacked by the dialect's JSONValues, so that a
// 100,000-subject watchlist part is one statement.

var _ service.PushStore = (*Store)(nil)

// jsonList encodes values as a JSON array parameter.
func jsonList[T any](values []T) (string, error) {
	if values == nil {
		values = []T{}
	}
	b, err := json.Marshal(values)
	return string(b), err
}

// PendingChanges returns up to limit outbox rows, oldest first.
func (s *Store) PendingChanges(ctx context.Context, limit int) ([]service.OutboxChange, error) {
	rows, err := s.db.Query(ctx, `SELECT seq, entry_id, version, recorded_at, kind FROM event_outbox
		ORDER BY seq LIMIT $1`, storeutil.Limit(limit))
	out, err := collect(rows, err, func(r Rows) (service.OutboxChange, error) {
		var (
			c    service.OutboxChange
			kind string
		)
		err := r.Scan(&c.Seq, &c.EntryID, &c.Version, &c.RecordedAt, &kind)
		c.RecordedAt = c.RecordedAt.UTC()
		c.Kind = service.EventKind(kind)
		return c, err
	})
	if err != nil {
		return nil, s.errf("pending changes: %w", err)
	}
	return out, nil
}

// SweepExpired adds an outbox row for each change that time alone makes
// since the previous sweep, at or before now, and moves the sweep to now
// (the first sweep only sets it): 'expired' for every entry, not revoked,
// whose validity ended, and 'published' for every entry, not revoked,
// whose published_at passed and was set by a version recorded before it:
// that write was told with the entry pending, measures not in force, and
// no write since told them in force. A published_at set by a write at or
// after it (an entry recorded published, nearly all of them, or one whose
// publication a correction brought forward to now) was told in force by
// that write. The sweep's row is locked (ForUpdate), so replicas sweeping
// at once do not both add rows.
func (s *Store) SweepExpired(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.db.InTx(ctx, func(tx Tx) error {
		var (
			from      time.Time
			published *time.Time
		)
		err := tx.QueryRow(ctx, `SELECT swept_until, published_until FROM expiry_sweep`+s.d.ForUpdate).Scan(&from, &published)
		if isNoRows(err) {
			_, err = tx.Exec(ctx, `INSERT INTO expiry_sweep (one, swept_until, published_until) VALUES ($1, $2, $2)`, s.d.SweepKey, now)
			return err
		}
		if err != nil {
			return err
		}
		if published == nil {
			published = &from // the row of a release that swept validity ends only
		}
		if now.After(from) {
			m, err := tx.Exec(ctx, `INSERT INTO event_outbox (entry_id, version, recorded_at, kind)
				SELECT id, version, valid_until, 'expired' FROM entries
				WHERE valid_until > $1 AND valid_until <= $2 AND revoked_at IS NULL ORDER BY valid_until, id`, from, now)
			if err != nil {
				return err
			}
			n += m
		}
		if now.After(*published) {
			// published_at > created_at, implied by the version recorded
			// before it, is entries_published_later's condition, spelled
			// alike so that the index serves; the versions are a probe of
			// entry_versions' key per entry found.
			m, err := tx.Exec(ctx, `INSERT INTO event_outbox (entry_id, version, recorded_at, kind)
				SELECT e.id, e.version, e.published_at, 'published' FROM entries e
				WHERE e.published_at > $1 AND e.published_at <= $2 AND e.published_at > e.created_at AND e.revoked_at IS NULL
					AND EXISTS (SELECT 1 FROM entry_versions v
						WHERE v.id = e.id AND v.published_at = e.published_at AND v.recorded_at < e.published_at)
				ORDER BY e.published_at, e.id`, *published, now)
			if err != nil {
				return err
			}
			n += m
		}
		if !now.After(from) && !now.After(*published) {
			return nil
		}
		// Neither position goes back (a replica whose clock is behind).
		_, err = tx.Exec(ctx, `UPDATE expiry_sweep SET swept_until = $1, published_until = $2`,
			latest(from, now), latest(*published, now))
		return err
	})
	if err != nil {
		return 0, s.errf("sweep expired: %w", err)
	}
	return n, nil
}

// latest is the later of a and b.
func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// EntryVersion returns version v of entry id from its history.
func (s *Store) EntryVersion(ctx context.Context, id string, v int64) (policy.Entry, error) {
	e, err := scanEntry(s.db.QueryRow(ctx, `SELECT `+VersionColumns+` FROM entry_versions v
		WHERE v.id = $1 AND v.version = $2`, id, v))
	if isNoRows(err) {
		return policy.Entry{}, fmt.Errorf("entry %q version %d: %w", id, v, service.ErrNotFound)
	}
	if err != nil {
		return policy.Entry{}, s.errf("entry %q version %d: %w", id, v, err)
	}
	return e, nil
}

// checkersSQL reads the partners that checked each of the subjects ($1, a
// JSON list) at or after $2 from check_index, where every check
// made at the time it answered is indexed (a check as of a past time is
// not: it subscribes no one). check_index_subject is (subject, action,
// checked_at) and check_index is never pruned, so the checks in the window
// are read by a seek per subject and action: acts walks a subject's
// actions one index probe each (the next action after the last, a loose
// index scan), and checksOfAction reads each one's checks from $2 on,
// instead of every check the subject ever had. No list of actions is
// needed: an action dropped from the catalogue still has its checks.
const checkersSQL = `WITH RECURSIVE s(subject) AS (SELECT DISTINCT value FROM %[1]s),
	acts(subject, action) AS (
		SELECT s.subject, (SELECT c.action FROM check_index c WHERE c.subject = s.subject ORDER BY c.action LIMIT 1) FROM s
		UNION ALL
		SELECT a.subject, (SELECT c.action FROM check_index c WHERE c.subject = a.subject AND c.action > a.action
			ORDER BY c.action LIMIT 1)
		FROM acts a WHERE a.action IS NOT NULL)
	SELECT subject, partner, reason FROM (
		SELECT w.subject, w.partner, 'watchlist' AS reason FROM watchlist w
		WHERE w.subject IN (SELECT value FROM %[2]s)
		UNION ALL
		SELECT DISTINCT a.subject, c.partner, 'checked' AS reason FROM acts a %[3]s
	) x ORDER BY subject, partner, reason`

// checksOfAction is the default Dialect.ChecksOfAction: SQLite always
// loops over the left table of a CROSS JOIN outside, so acts' rows are
// the seeks (without the hint it may read the window's checks through
// check_index_time and look each up in acts).
const checksOfAction = `CROSS JOIN check_index c ON c.subject = a.subject AND c.action = a.action AND c.checked_at >= $2`

// subscribersSQL is checkersSQL in the dialect.
func (d Dialect) subscribersSQL() string {
	few, checks := d.JSONValues, checksOfAction
	if d.FewValues != nil {
		few = d.FewValues
	}
	if d.ChecksOfAction != "" {
		checks = d.ChecksOfAction
	}
	return fmt.Sprintf(checkersSQL, few("$1"), d.JSONValues("$1"), checks)
}

// Subscribers returns the partners subscribed to each of subjects: by
// their watchlist, or by a check of the subject at or after checkedSince.
func (s *Store) Subscribers(ctx context.Context, subjects []string, checkedSince time.Time) ([]service.Subscriber, error) {
	if len(subjects) == 0 {
		return nil, nil
	}
	list, err := jsonList(subjects)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, s.d.subscribersSQL(), list, checkedSince)
	out, err := collect(rows, err, func(r Rows) (service.Subscriber, error) {
		var sub service.Subscriber
		err := r.Scan(&sub.Subject, &sub.Partner, &sub.Reason)
		return sub, err
	})
	if err != nil {
		return nil, s.errf("subscribers: %w", err)
	}
	return out, nil
}

// ClaimFanout takes the fan-out's lease for holder until now+lease, or
// renews holder's own: an upsert of the one row that changes it only when
// the lease is holder's or has ended, so that of two claims at once one
// changes no row (PostgreSQL re-checks the condition on the row the other
// committed).
func (s *Store) ClaimFanout(ctx context.Context, holder string, now time.Time, lease time.Duration) (bool, error) {
	n, err := s.db.Exec(ctx, `INSERT INTO event_fanout (one, holder, leased_until) VALUES ($1, $2, $3)
		ON CONFLICT (one) DO UPDATE SET holder = excluded.holder, leased_until = excluded.leased_until
		WHERE event_fanout.holder = excluded.holder OR event_fanout.leased_until <= $4`,
		s.d.SweepKey, holder, now.Add(lease), now)
	if err != nil {
		return false, s.errf("claim fan-out: %w", err)
	}
	return n == 1, nil
}

// ReleaseFanout ends holder's lease, if it still holds it.
func (s *Store) ReleaseFanout(ctx context.Context, holder string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM event_fanout WHERE holder = $1`, holder); err != nil {
		return s.errf("release fan-out: %w", err)
	}
	return nil
}

// PublishEvents deletes the outbox rows done and inserts events and their
// deliveries, in one transaction under the dialect's event lock.
func (s *Store) PublishEvents(ctx context.Context, done []int64, events []service.StoredEvent) error {
	seqs, err := jsonList(done)
	if err != nil {
		return err
	}
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	idList, err := jsonList(ids)
	if err != nil {
		return err
	}
	err = s.db.InTx(ctx, func(tx Tx) error {
		if s.d.EventLock != "" {
			if _, err := tx.Exec(ctx, s.d.EventLock); err != nil {
				return err
			}
		}
		n, err := tx.Exec(ctx, `DELETE FROM event_outbox WHERE seq IN (SELECT CAST(value AS BIGINT) FROM `+s.d.JSONValues("$1")+`)`, seqs)
		if err != nil {
			return err
		}
		if n != int64(len(done)) {
			return fmt.Errorf("%w: outbox rows already published", service.ErrConflict)
		}
		stmts := make([]Stmt, 0, len(events)+1)
		for _, e := range events {
			stmts = append(stmts, Stmt{`INSERT INTO events (id, partner, kind, created_at, body) VALUES ($1, $2, $3, $4, $5)`,
				[]any{e.ID, e.Partner, string(e.Kind), e.CreatedAt, nonNil(e.Body)}})
		}
		if len(events) > 0 {
			stmts = append(stmts, Stmt{`INSERT INTO deliveries (event_seq, partner, state, attempts, next_at, updated_at)
				SELECT e.seq, e.partner, 'pending', 0, e.created_at, e.created_at FROM events e
				JOIN webhooks w ON w.partner = e.partner
				WHERE e.id IN (SELECT value FROM ` + s.d.JSONValues("$1") + `)`, []any{idList}})
		}
		if _, err := tx.ExecBatch(ctx, stmts); err != nil {
			return s.d.MapErr(err)
		}
		return nil
	})
	if err != nil {
		return s.errf("publish events: %w", err)
	}
	return nil
}

const eventColumns = `e.seq, e.id, e.partner, e.kind, e.created_at, e.body`

func scanEvent(r Row, extra ...any) (service.StoredEvent, error) {
	var (
		e    service.StoredEvent
		kind string
	)
	err := r.Scan(append([]any{&e.Seq, &e.ID, &e.Partner, &kind, &e.CreatedAt, &e.Body}, extra...)...)
	e.CreatedAt = e.CreatedAt.UTC()
	e.Kind = service.EventKind(kind)
	return e, err
}

// Events returns up to limit events of partner after seq after.
func (s *Store) Events(ctx context.Context, partner string, after int64, limit int) ([]service.StoredEvent, error) {
	rows, err := s.db.Query(ctx, `SELECT `+eventColumns+` FROM events e
		WHERE e.partner = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3`, partner, after, storeutil.Limit(limit))
	out, err := collect(rows, err, func(r Rows) (service.StoredEvent, error) { return scanEvent(r) })
	if err != nil {
		return nil, s.errf("events: %w", err)
	}
	return out, nil
}

// PruneEvents deletes events created before before, with their deliveries
// and attempts.
func (s *Store) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.db.InTx(ctx, func(tx Tx) error {
		for _, q := range []string{
			`DELETE FROM delivery_attempts WHERE event_seq IN (SELECT seq FROM events WHERE created_at < $1)`,
			`DELETE FROM deliveries WHERE event_seq IN (SELECT seq FROM events WHERE created_at < $1)`,
		} {
			if _, err := tx.Exec(ctx, q, before); err != nil {
				return err
			}
		}
		var err error
		n, err = tx.Exec(ctx, `DELETE FROM events WHERE created_at < $1`, before)
		return err
	})
	if err != nil {
		return 0, s.errf("prune events: %w", err)
	}
	for _, q := range s.d.AfterPruneSQL {
		if _, err := s.db.Exec(ctx, q); err != nil {
			return n, s.errf("after pruning: %w", err)
		}
	}
	return n, nil
}

// WatchSubjects adds or removes subjects of partner's watchlist.
func (s *Store) WatchSubjects(ctx context.Context, partner string, subjects []string, remove bool, at time.Time) (changed, size int64, err error) {
	list, err := jsonList(subjects)
	if err != nil {
		return 0, 0, err
	}
	err = s.db.InTx(ctx, func(tx Tx) error {
		var err error
		if remove {
			changed, err = tx.Exec(ctx, `DELETE FROM watchlist WHERE partner = $1
				AND subject IN (SELECT value FROM `+s.d.JSONValues("$2")+`)`, partner, list)
		} else {
			changed, err = tx.Exec(ctx, `INSERT INTO watchlist (partner, subject, added_at)
				SELECT $1, value, $3 FROM `+s.d.JSONValues("$2")+` WHERE true
				ON CONFLICT (partner, subject) DO NOTHING`, partner, list, at)
		}
		if err != nil {
			return err
		}
		// The size as this write left it, in its transaction: read after
		// the commit, under the read bound, a count of millions could fail
		// and make a committed part look refused.
		return tx.QueryRow(ctx, `SELECT count(*) FROM watchlist WHERE partner = $1`, partner).Scan(&size)
	})
	if err != nil {
		return 0, 0, s.errf("watchlist: %w", err)
	}
	s.afterWatchlist(ctx, changed)
	return changed, size, nil
}

// afterWatchlist refreshes PostgreSQL's statistics of the watchlist after
// a part that changed at least analyzeRows subjects, as afterLoad does
// for entries: planned from the statistics of a smaller table, until
// autovacuum (which may be off, or late) analyses it, the fan-out's
// Subscribers read the whole watchlist for each outbox row (44 ms instead
// of 0.4 after a 250 000-subject upload). ANALYZE reads a sample, so it
// costs the same whatever the table's size. SQLite plans the read from
// the index without statistics, and its ANALYZE reads every row. The part
// is committed: a failure here slows the fan-out, nothing more, so it is
// dropped.
func (s *Store) afterWatchlist(ctx context.Context, changed int64) {
	if changed < analyzeRows || s.d.Name != "postgres" {
		return
	}
	_, _ = s.db.Exec(ctx, `ANALYZE watchlist`)
}

// WatchlistSize counts partner's watched subjects.
func (s *Store) WatchlistSize(ctx context.Context, partner string) (int64, error) {
	var n int64
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM watchlist WHERE partner = $1`, partner).Scan(&n); err != nil {
		return 0, s.errf("watchlist size: %w", err)
	}
	return n, nil
}
