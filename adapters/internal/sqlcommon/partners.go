package sqlcommon

import (
	"context"
	"errors"
	"fmt"

	"github.com/credgate/credgate/adapters/internal/storeutil"
	"github.com/credgate/credgate/service"
)

const partnerColumns = `id, client_id, name, role, actions, secret_hash, status,
	created_at, updated_at, revoked_at, version, credentials, subject_kinds, visibility, rate_limit, region`

// InsertPartner stores p; a duplicate ID or ClientID is service.ErrConflict.
func (s *Store) InsertPartner(ctx context.Context, p service.Partner) error {
	p = storeutil.NormalizePartner(p)
	j, err := storeutil.EncodePartner(p)
	if err != nil {
		return s.errf("insert partner %q: %w", p.ID, err)
	}
	err = s.db.InTx(ctx, func(tx Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO partners (`+partnerColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
			p.ID, p.ClientID, p.Name, string(p.Role), string(j.Actions), p.SecretHash, string(p.Status),
			p.CreatedAt, p.UpdatedAt, p.RevokedAt, p.Version,
			string(j.Credentials), string(j.SubjectKinds), string(p.Visibility), p.RateLimit, p.Region)
		return err
	})
	if err != nil {
		return s.errf("insert partner %q: %w", p.ID, s.d.MapErr(err))
	}
	return nil
}

// PartnerByClientID returns the partner holding clientID, or
// service.ErrNotFound.
func (s *Store) PartnerByClientID(ctx context.Context, clientID string) (service.Partner, error) {
	p, err := scanPartner(s.db.QueryRow(ctx, `SELECT `+partnerColumns+` FROM partners WHERE client_id = $1`, clientID))
	if isNoRows(err) {
		return service.Partner{}, fmt.Errorf("partner %q: %w", clientID, service.ErrNotFound)
	}
	if err != nil {
		// Without the id: this error is logged (a 5xx), and a "client id"
		// at the token endpoint may be a secret pasted into the wrong field.
		return service.Partner{}, s.errf("read partner by client id: %w", err)
	}
	return p, nil
}

// ListPartners returns every partner ordered by ID.
func (s *Store) ListPartners(ctx context.Context) ([]service.Partner, error) {
	rows, err := s.db.Query(ctx, `SELECT `+partnerColumns+` FROM partners ORDER BY id`)
	out, err := collect(rows, err, func(r Rows) (service.Partner, error) { return scanPartner(r) })
	if err != nil {
		return nil, s.errf("list partners: %w", err)
	}
	return out, nil
}

// UpdatePartner replaces the partner whose stored version is p.Version-1.
// An update that would leave no active administrator (revoking the last
// one) is service.ErrLastAdmin, and nothing changes.
func (s *Store) UpdatePartner(ctx context.Context, p service.Partner) error {
	p = storeutil.NormalizePartner(p)
	j, err := storeutil.EncodePartner(p)
	if err != nil {
		return s.errf("update partner %q: %w", p.ID, err)
	}
	err = s.db.InTx(ctx, func(tx Tx) error {
		if p.Role != service.RoleAdmin || p.Status != service.PartnerActive {
			if err := s.keepAnAdmin(ctx, tx, p); err != nil {
				return err
			}
		}
		n, err := tx.Exec(ctx, `UPDATE partners SET
			client_id = $2, name = $3, role = $4, actions = $5, secret_hash = $6, status = $7,
			created_at = $8, updated_at = $9, revoked_at = $10, version = $11,
			credentials = $13, subject_kinds = $14, visibility = $15, rate_limit = $16, region = $17
			WHERE id = $1 AND version = $12`,
			p.ID, p.ClientID, p.Name, string(p.Role), string(j.Actions), p.SecretHash, string(p.Status),
			p.CreatedAt, p.UpdatedAt, p.RevokedAt, p.Version, p.Version-1,
			string(j.Credentials), string(j.SubjectKinds), string(p.Visibility), p.RateLimit, p.Region)
		if err != nil {
			return s.d.MapErr(err)
		}
		return checkUpdated(ctx, tx, n, "partners", p.ID)
	})
	if errors.Is(err, service.ErrLastAdmin) {
		return err // a refusal, not a fault of the engine: its text is the problem's detail
	}
	if err != nil {
		return s.errf("update partner %q: %w", p.ID, err)
	}
	return nil
}

// keepAnAdmin refuses, within tx, an update that takes p out of the
// active administrators when it is the last of them. The count and the
// update must be one atomic step: two administrators revoking each other
// at once on two replicas would otherwise both see the other still active
// and both succeed, leaving nobody to administer. PostgreSQL locks the
// active administrators' rows (in id order, so that two such updates
// queue rather than deadlock) and the second re-reads them after the first
// commits; SQLite's write transactions already exclude one another.
func (s *Store) keepAnAdmin(ctx context.Context, tx Tx, p service.Partner) error {
	rows, err := tx.Query(ctx, `SELECT id FROM partners WHERE role = $1 AND status = $2 ORDER BY id`+s.d.ForUpdate,
		string(service.RoleAdmin), string(service.PartnerActive))
	ids, err := collect(rows, err, scanString)
	if err != nil {
		return err
	}
	if len(ids) == 1 && ids[0] == p.ID {
		return fmt.Errorf("%w: %s is the last active administrator", service.ErrLastAdmin, p.ClientID)
	}
	return nil
}

func scanPartner(row Row) (service.Partner, error) {
	var (
		p                        service.Partner
		role, status, visibility string
		actions, creds, kinds    []byte
	)
	if err := row.Scan(&p.ID, &p.ClientID, &p.Name, &role, &actions, &p.SecretHash, &status,
		&p.CreatedAt, &p.UpdatedAt, &p.RevokedAt, &p.Version, &creds, &kinds, &visibility, &p.RateLimit, &p.Region); err != nil {
		return service.Partner{}, err
	}
	p.Visibility = service.Visibility(visibility)
	p.Role = service.Role(role)
	p.Status = service.PartnerStatus(status)
	// DecodePartner also brings every time to UTC.
	if err := storeutil.DecodePartner(&p, storeutil.PartnerJSON{Actions: actions, Credentials: creds, SubjectKinds: kinds}); err != nil {
		return service.Partner{}, err
	}
	return p, nil
}
