package sqlcommon

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/credgate/credgate/service"
)

// Departments' subscriptions by measure authority (0012).

// SetAuthorities replaces partner's authorities in one transaction; those
// kept keep their creation time.
func (s *Store) SetAuthorities(ctx context.Context, partner string, authorities []string, at time.Time) error {
	list, err := jsonList(authorities)
	if err != nil {
		return err
	}
	err = s.db.InTx(ctx, func(tx Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM authority_subscriptions WHERE partner = $1
			AND authority NOT IN (SELECT value FROM `+s.d.JSONValues("$2")+`)`, partner, list); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO authority_subscriptions (partner, authority, created_at)
			SELECT $1, value, $3 FROM `+s.d.JSONValues("$2")+` WHERE true
			ON CONFLICT (partner, authority) DO NOTHING`, partner, list, at)
		return err
	})
	if err != nil {
		return s.errf("set authorities: %w", err)
	}
	return nil
}

// Authorities returns partner's subscriptions, ordered by authority.
func (s *Store) Authorities(ctx context.Context, partner string) ([]service.AuthoritySubscription, error) {
	rows, err := s.db.Query(ctx, `SELECT partner, authority, created_at FROM authority_subscriptions
		WHERE partner = $1`, partner)
	out, err := collect(rows, err, scanAuthority)
	if err != nil {
		return nil, s.errf("authorities: %w", err)
	}
	sortAuthorities(out)
	return out, nil
}

// AuthoritySubscriptions returns every subscription, ordered by partner
// then authority.
func (s *Store) AuthoritySubscriptions(ctx context.Context) ([]service.AuthoritySubscription, error) {
	rows, err := s.db.Query(ctx, `SELECT partner, authority, created_at FROM authority_subscriptions`)
	out, err := collect(rows, err, scanAuthority)
	if err != nil {
		return nil, s.errf("authority subscriptions: %w", err)
	}
	sortAuthorities(out)
	return out, nil
}

// sortAuthorities orders by partner then authority, byte-wise: the
// database's collation would order Chinese names differently per
// installation.
func sortAuthorities(subs []service.AuthoritySubscription) {
	slices.SortFunc(subs, func(a, b service.AuthoritySubscription) int {
		return cmp.Or(strings.Compare(a.Partner, b.Partner), strings.Compare(a.Authority, b.Authority))
	})
}

func scanAuthority(r Rows) (service.AuthoritySubscription, error) {
	var a service.AuthoritySubscription
	err := r.Scan(&a.Partner, &a.Authority, &a.CreatedAt)
	a.CreatedAt = a.CreatedAt.UTC() // PostgreSQL's driver answers in the process's zone
	return a, err
}
