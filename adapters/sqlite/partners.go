package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

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
		return fmt.Errorf("sqlite: insert partner %q: %w", p.ID, err)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO partners (`+partnerColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.ClientID, p.Name, string(p.Role), string(j.Actions), p.SecretHash, string(p.Status),
		micros(p.CreatedAt), micros(p.UpdatedAt), microsPtr(p.RevokedAt), p.Version,
		string(j.Credentials), string(j.SubjectKinds), string(p.Visibility), p.RateLimit); err != nil {
		return fmt.Errorf("sqlite: insert partner %q: %w", p.ID, mapErr(err))
	}
	return nil
}

// PartnerByClientID returns the partner holding clientID, or
// service.ErrNotFound.
func (s *Store) PartnerByClientID(ctx context.Context, clientID string) (service.Partner, error) {
	p, err := scanPartner(s.r.QueryRowContext(ctx, `SELECT `+partnerColumns+` FROM partners WHERE client_id = ?`, clientID))
	if errors.Is(err, sql.ErrNoRows) {
		return service.Partner{}, fmt.Errorf("sqlite: partner %q: %w", clientID, service.ErrNotFound)
	}
	if err != nil {
		return service.Partner{}, fmt.Errorf("sqlite: partner %q: %w", clientID, err)
	}
	return p, nil
}

// ListPartners returns every partner ordered by ID.
func (s *Store) ListPartners(ctx context.Context) ([]service.Partner, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+partnerColumns+` FROM partners ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list partners: %w", err)
	}
	defer rows.Close()
	var out []service.Partner
	for rows.Next() {
		p, err := scanPartner(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list partners: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list partners: %w", err)
	}
	return out, nil
}

// UpdatePartner replaces the partner whose stored version is p.Version-1.
func (s *Store) UpdatePartner(ctx context.Context, p service.Partner) error {
	p = storeutil.NormalizePartner(p)
	j, err := storeutil.EncodePartner(p)
	if err != nil {
		return fmt.Errorf("sqlite: update partner %q: %w", p.ID, err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: update partner %q: %w", p.ID, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE partners SET
		client_id = ?, name = ?, role = ?, actions = ?, secret_hash = ?, status = ?,
		created_at = ?, updated_at = ?, revoked_at = ?, version = ?,
		credentials = ?, subject_kinds = ?, visibility = ?, rate_limit = ?
		WHERE id = ? AND version = ?`,
		p.ClientID, p.Name, string(p.Role), string(j.Actions), p.SecretHash, string(p.Status),
		micros(p.CreatedAt), micros(p.UpdatedAt), microsPtr(p.RevokedAt), p.Version,
		string(j.Credentials), string(j.SubjectKinds), string(p.Visibility), p.RateLimit,
		p.ID, p.Version-1)
	if err != nil {
		return fmt.Errorf("sqlite: update partner %q: %w", p.ID, mapErr(err))
	}
	if err := checkUpdated(ctx, tx, res, "partners", p.ID); err != nil {
		return fmt.Errorf("sqlite: update partner %q: %w", p.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: update partner %q: %w", p.ID, err)
	}
	return nil
}

func scanPartner(sc scanner) (service.Partner, error) {
	var (
		p                        service.Partner
		role, status, visibility string
		actions, creds, kinds    string
		created, updated         int64
		revokedAt                sql.NullInt64
	)
	if err := sc.Scan(&p.ID, &p.ClientID, &p.Name, &role, &actions, &p.SecretHash, &status,
		&created, &updated, &revokedAt, &p.Version, &creds, &kinds, &visibility, &p.RateLimit); err != nil {
		return service.Partner{}, err
	}
	p.Visibility = service.Visibility(visibility)
	p.Role = service.Role(role)
	p.Status = service.PartnerStatus(status)
	p.CreatedAt = fromMicros(created)
	p.UpdatedAt = fromMicros(updated)
	p.RevokedAt = fromMicrosPtr(revokedAt)
	if err := storeutil.DecodePartner(&p, storeutil.PartnerJSON{
		Actions: []byte(actions), Credentials: []byte(creds), SubjectKinds: []byte(kinds),
	}); err != nil {
		return service.Partner{}, err
	}
	return p, nil
}
