package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/adapters/internal/storeutil"
	"github.com/credgate/credgate/service"
)

const partnerColumns = `id, client_id, name, role, actions, secret_hash, status,
	created_at, updated_at, revoked_at, version, credentials, subject_kinds, visibility, rate_limit`

// InsertPartner stores p; a duplicate ID or ClientID is service.ErrConflict.
func (s *Store) InsertPartner(ctx context.Context, p service.Partner) error {
	p = storeutil.NormalizePartner(p)
	j, err := storeutil.EncodePartner(p)
	if err != nil {
		return fmt.Errorf("postgres: insert partner %q: %w", p.ID, err)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO partners (`+partnerColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		p.ID, p.ClientID, p.Name, string(p.Role), string(j.Actions), p.SecretHash, string(p.Status),
		p.CreatedAt, p.UpdatedAt, p.RevokedAt, p.Version,
		string(j.Credentials), string(j.SubjectKinds), string(p.Visibility), p.RateLimit); err != nil {
		return fmt.Errorf("postgres: insert partner %q: %w", p.ID, mapErr(err))
	}
	return nil
}

// PartnerByClientID returns the partner holding clientID, or
// service.ErrNotFound.
func (s *Store) PartnerByClientID(ctx context.Context, clientID string) (service.Partner, error) {
	p, err := scanPartner(s.pool.QueryRow(ctx, `SELECT `+partnerColumns+` FROM partners WHERE client_id = $1`, clientID))
	if errors.Is(err, pgx.ErrNoRows) {
		return service.Partner{}, fmt.Errorf("postgres: partner %q: %w", clientID, service.ErrNotFound)
	}
	if err != nil {
		return service.Partner{}, fmt.Errorf("postgres: partner %q: %w", clientID, err)
	}
	return p, nil
}

// ListPartners returns every partner ordered by ID.
func (s *Store) ListPartners(ctx context.Context) ([]service.Partner, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+partnerColumns+` FROM partners ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list partners: %w", err)
	}
	defer rows.Close()
	var out []service.Partner
	for rows.Next() {
		p, err := scanPartner(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list partners: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list partners: %w", err)
	}
	return out, nil
}

// UpdatePartner replaces the partner whose stored version is p.Version-1.
func (s *Store) UpdatePartner(ctx context.Context, p service.Partner) error {
	p = storeutil.NormalizePartner(p)
	j, err := storeutil.EncodePartner(p)
	if err != nil {
		return fmt.Errorf("postgres: update partner %q: %w", p.ID, err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE partners SET
			client_id = $2, name = $3, role = $4, actions = $5, secret_hash = $6, status = $7,
			created_at = $8, updated_at = $9, revoked_at = $10, version = $11,
			credentials = $13, subject_kinds = $14, visibility = $15, rate_limit = $16
			WHERE id = $1 AND version = $12`,
			p.ID, p.ClientID, p.Name, string(p.Role), string(j.Actions), p.SecretHash, string(p.Status),
			p.CreatedAt, p.UpdatedAt, p.RevokedAt, p.Version, p.Version-1,
			string(j.Credentials), string(j.SubjectKinds), string(p.Visibility), p.RateLimit)
		if err != nil {
			return mapErr(err)
		}
		return checkUpdated(ctx, tx, tag.RowsAffected(), "partners", p.ID)
	})
	if err != nil {
		return fmt.Errorf("postgres: update partner %q: %w", p.ID, err)
	}
	return nil
}

func scanPartner(row pgx.Row) (service.Partner, error) {
	var (
		p                        service.Partner
		role, status, visibility string
		actions, creds, kinds    []byte
		revokedAt                *time.Time
	)
	if err := row.Scan(&p.ID, &p.ClientID, &p.Name, &role, &actions, &p.SecretHash, &status,
		&p.CreatedAt, &p.UpdatedAt, &revokedAt, &p.Version, &creds, &kinds, &visibility, &p.RateLimit); err != nil {
		return service.Partner{}, err
	}
	p.Visibility = service.Visibility(visibility)
	p.Role = service.Role(role)
	p.Status = service.PartnerStatus(status)
	p.RevokedAt = revokedAt
	if err := storeutil.DecodePartner(&p, storeutil.PartnerJSON{Actions: actions, Credentials: creds, SubjectKinds: kinds}); err != nil {
		return service.Partner{}, err
	}
	return p, nil
}
