package sqlcommon

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/credgate/credgate/adapters/internal/storeutil"
	"github.com/credgate/credgate/service"
)

// Webhooks and deliveries (0011): a delivery is pending until a 2xx
// answer (delivered) or its last attempt (dead); a worker leases it by
// setting leased_until. A claim takes only a row whose lease has ended
// (or was released) and leases it past its own now, so its leased_until
// is later than that of any earlier claim still in flight on the row: the
// value names the claim, and an attempt is recorded only by the claim
// whose value the row still holds (no migration for an owner column).

// SetWebhook inserts or replaces partner's webhook.
func (s *Store) SetWebhook(ctx context.Context, w service.Webhook) error {
	_, err := s.db.Exec(ctx, `INSERT INTO webhooks (partner, url, created_at, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (partner) DO UPDATE SET url = excluded.url, updated_at = excluded.updated_at`,
		w.Partner, w.URL, w.CreatedAt, w.UpdatedAt)
	if err != nil {
		return s.errf("set webhook: %w", err)
	}
	return nil
}

// Webhook returns partner's webhook.
func (s *Store) Webhook(ctx context.Context, partner string) (service.Webhook, error) {
	var w service.Webhook
	err := s.db.QueryRow(ctx, `SELECT partner, url, created_at, updated_at FROM webhooks WHERE partner = $1`, partner).
		Scan(&w.Partner, &w.URL, &w.CreatedAt, &w.UpdatedAt)
	if isNoRows(err) {
		return service.Webhook{}, fmt.Errorf("webhook: %w", service.ErrNotFound)
	}
	if err != nil {
		return service.Webhook{}, s.errf("webhook: %w", err)
	}
	// PostgreSQL's driver answers in the process's zone.
	w.CreatedAt, w.UpdatedAt = w.CreatedAt.UTC(), w.UpdatedAt.UTC()
	return w, nil
}

// DeleteWebhook removes partner's webhook and its pending deliveries.
func (s *Store) DeleteWebhook(ctx context.Context, partner string) error {
	err := s.db.InTx(ctx, func(tx Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM deliveries WHERE partner = $1 AND state = 'pending'`, partner); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM webhooks WHERE partner = $1`, partner)
		return err
	})
	if err != nil {
		return s.errf("delete webhook: %w", err)
	}
	return nil
}

const deliveryColumns = `d.state, d.attempts, d.next_at, d.last_status, d.last_error, d.updated_at`

func scanDelivery(r Row) (service.Delivery, error) {
	var (
		d   service.Delivery
		url *string
	)
	e, err := scanEvent(r, &url, &d.State, &d.Attempts, &d.NextAt, &d.LastStatus, &d.LastError, &d.UpdatedAt)
	d.Event = e
	if url != nil {
		d.URL = *url
	}
	// PostgreSQL's driver answers in the process's zone.
	d.NextAt, d.UpdatedAt, d.Event.CreatedAt = d.NextAt.UTC(), d.UpdatedAt.UTC(), d.Event.CreatedAt.UTC()
	return d, err
}

// ClaimDeliveries leases up to limit due deliveries, earliest due first.
// With a share, it leases in rounds: each round reads the due deliveries
// of the partners still below share.PerPartner (in flight, share.Busy,
// and leased by this claim), and takes of each no more than its room, so
// that a partner with many deliveries due does not take every free worker,
// nor hide those of others behind its own.
func (s *Store) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int, share ...service.DeliveryShare) ([]service.Delivery, error) {
	var sh service.DeliveryShare
	if len(share) > 0 {
		sh = share[0]
	}
	// Stored to the microsecond, as both databases keep it, so that
	// RecordAttempt finds it equal.
	until := now.Add(lease).Truncate(time.Microsecond)
	var out []service.Delivery
	err := s.db.InTx(ctx, func(tx Tx) error {
		taken := map[string]int{}
		// isFull: the partner has no room left in this claim.
		isFull := func(p string) bool { return sh.PerPartner > 0 && sh.Busy[p]+taken[p] >= sh.PerPartner }
		var claimed []int64
		for len(claimed) < limit {
			want := limit - len(claimed)
			q := `SELECT event_seq, partner FROM deliveries
				WHERE state = 'pending' AND next_at <= $1 AND (leased_until IS NULL OR leased_until < $1)`
			args := []any{now, storeutil.Limit(want)}
			if sh.PerPartner > 0 {
				var full []string
				for p := range sh.Busy {
					if isFull(p) {
						full = append(full, p)
					}
				}
				for p := range taken {
					if _, ok := sh.Busy[p]; !ok && isFull(p) {
						full = append(full, p)
					}
				}
				if len(full) > 0 {
					list, err := jsonList(full)
					if err != nil {
						return err
					}
					args = append(args, list)
					q += ` AND partner NOT IN (SELECT value FROM ` + s.d.JSONValues("$3") + `)`
				}
			}
			rows, err := tx.Query(ctx, q+` ORDER BY next_at, event_seq LIMIT $2`+s.d.SkipLocked, args...)
			type due struct {
				seq     int64
				partner string
			}
			found, err := collect(rows, err, func(r Rows) (due, error) {
				var x due
				return x, r.Scan(&x.seq, &x.partner)
			})
			if err != nil {
				return err
			}
			var round []int64
			for _, x := range found {
				if isFull(x.partner) {
					continue
				}
				taken[x.partner]++
				round = append(round, x.seq)
			}
			if len(round) > 0 {
				list, err := jsonList(round)
				if err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `UPDATE deliveries SET leased_until = $2 WHERE event_seq IN (SELECT CAST(value AS BIGINT) FROM `+
					s.d.JSONValues("$1")+`)`, list, until); err != nil {
					return err
				}
				claimed = append(claimed, round...)
			}
			// A round that found fewer than it asked for found every one
			// due; one that skipped some (a partner's room filled) asks
			// again without that partner.
			if len(found) < want || len(round) == len(found) {
				break
			}
		}
		if len(claimed) == 0 {
			return nil
		}
		list, err := jsonList(claimed)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+eventColumns+`, w.url, `+deliveryColumns+`
			FROM deliveries d JOIN events e ON e.seq = d.event_seq LEFT JOIN webhooks w ON w.partner = d.partner
			WHERE d.event_seq IN (SELECT CAST(value AS BIGINT) FROM `+s.d.JSONValues("$1")+`) ORDER BY d.next_at, d.event_seq`, list)
		out, err = collect(rows, err, func(r Rows) (service.Delivery, error) {
			d, err := scanDelivery(r)
			d.LeasedUntil = until
			return d, err
		})
		return err
	})
	if err != nil {
		return nil, s.errf("claim deliveries: %w", err)
	}
	return out, nil
}

// RecordAttempt logs an attempt and sets the delivery's state: with
// a.Lease, only while that claim holds the delivery, so that of two
// replicas that attempted it (the first's lease having run out), only the
// one that holds it records.
func (s *Store) RecordAttempt(ctx context.Context, a service.DeliveryAttempt, state string, next time.Time) error {
	errText := a.Error
	if len(errText) > 500 {
		errText = errText[:500]
	}
	err := s.db.InTx(ctx, func(tx Tx) error {
		q := `UPDATE deliveries SET state = $2, attempts = $3, next_at = $4, leased_until = NULL, last_status = $5,
			last_error = $6, updated_at = $7 WHERE event_seq = $1`
		args := []any{a.EventSeq, state, a.Attempt, next, a.Status, errText, a.At}
		if !a.Lease.IsZero() {
			q += ` AND leased_until = $8`
			args = append(args, a.Lease.Truncate(time.Microsecond))
		}
		n, err := tx.Exec(ctx, q, args...)
		if err != nil {
			return s.d.MapErr(err)
		}
		if n == 0 && !a.Lease.IsZero() {
			return service.ErrDeliveryLeaseLost
		}
		// Numbered on from the log, not from the delivery's attempts,
		// which a replay resets.
		_, err = tx.Exec(ctx, `INSERT INTO delivery_attempts (event_seq, attempt, at, status, error, duration_us)
			VALUES ($1, (SELECT coalesce(max(attempt), 0) + 1 FROM delivery_attempts WHERE event_seq = $1), $2, $3, $4, $5)`,
			a.EventSeq, a.At, a.Status, errText, a.Duration.Microseconds())
		return s.d.MapErr(err)
	})
	if err != nil {
		return s.errf("record attempt: %w", err)
	}
	return nil
}

// Deliveries lists deliveries by event seq.
func (s *Store) Deliveries(ctx context.Context, f service.DeliveryFilter) ([]service.Delivery, error) {
	q := `SELECT ` + eventColumns + `, w.url, ` + deliveryColumns + `
		FROM deliveries d JOIN events e ON e.seq = d.event_seq LEFT JOIN webhooks w ON w.partner = d.partner
		WHERE d.event_seq > $1`
	args := []any{f.After}
	if f.Partner != "" {
		args = append(args, f.Partner)
		q += ` AND d.partner = $` + strconv.Itoa(len(args))
	}
	if f.State != "" {
		args = append(args, f.State)
		q += ` AND d.state = $` + strconv.Itoa(len(args))
	}
	args = append(args, storeutil.Limit(f.Limit))
	q += ` ORDER BY d.event_seq LIMIT $` + strconv.Itoa(len(args))
	rows, err := s.db.Query(ctx, q, args...)
	out, err := collect(rows, err, func(r Rows) (service.Delivery, error) { return scanDelivery(r) })
	if err != nil {
		return nil, s.errf("deliveries: %w", err)
	}
	return out, nil
}

// ReplayDeliveries makes dead deliveries of partner pending again.
func (s *Store) ReplayDeliveries(ctx context.Context, partner string, eventIDs []string, now time.Time) ([]string, error) {
	var out []string
	err := s.db.InTx(ctx, func(tx Tx) error {
		q := `SELECT e.id, e.seq FROM deliveries d JOIN events e ON e.seq = d.event_seq
			WHERE d.partner = $1 AND d.state = 'dead'`
		args := []any{partner}
		if len(eventIDs) > 0 {
			list, err := jsonList(eventIDs)
			if err != nil {
				return err
			}
			args = append(args, list)
			q += ` AND e.id IN (SELECT value FROM ` + s.d.JSONValues("$2") + `)`
		}
		rows, err := tx.Query(ctx, q+` ORDER BY e.seq LIMIT `+strconv.Itoa(service.MaxPage), args...)
		type row struct {
			id  string
			seq int64
		}
		found, err := collect(rows, err, func(r Rows) (row, error) {
			var x row
			return x, r.Scan(&x.id, &x.seq)
		})
		if err != nil {
			return err
		}
		stmts := make([]Stmt, 0, len(found))
		for _, x := range found {
			out = append(out, x.id)
			stmts = append(stmts, Stmt{`UPDATE deliveries SET state = 'pending', attempts = 0, next_at = $2,
				leased_until = NULL, updated_at = $2 WHERE event_seq = $1 AND state = 'dead'`, []any{x.seq, now}})
		}
		_, err = tx.ExecBatch(ctx, stmts)
		return err
	})
	if err != nil {
		return nil, s.errf("replay deliveries: %w", err)
	}
	return out, nil
}
