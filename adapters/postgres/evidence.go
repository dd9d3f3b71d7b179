package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/adapters/internal/storeutil"
	"github.com/credgate/credgate/evidence"
)

// appendSQL inserts a batch after the last record of the log in one
// statement and returns the first index. It must run after the append lock
// is held: under READ COMMITTED each statement sees what committed before
// it started, so max(idx) is then the end of the log.
const appendSQL = `WITH base AS (
		SELECT coalesce(max(idx) + 1, 0) AS first FROM evidence
	), ins AS (
		INSERT INTO evidence (idx, id, kind, partner, at, body, salt, hash)
		SELECT base.first + r.ord - 1, r.id, r.kind, r.partner, r.at, r.body, r.salt, r.hash
		FROM base, unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::bytea[], $6::bytea[], $7::bytea[])
			WITH ORDINALITY AS r(id, kind, partner, at, body, salt, hash, ord)
		RETURNING 1
	)
	SELECT first, (SELECT count(*) FROM ins) FROM base`

// AppendBatch commits recs in one transaction with consecutive indexes
// following the last record, and returns the first index. Appenders in every
// process sharing the schema are serialised by a transaction-scoped advisory
// lock. An empty batch commits nothing and returns the index the next record
// will get.
func (s *Store) AppendBatch(ctx context.Context, recs []evidence.Record) (uint64, error) {
	var (
		n       = len(recs)
		ids     = make([]string, n)
		kinds   = make([]string, n)
		callers = make([]string, n)
		ats     = make([]time.Time, n)
		bodies  = make([][]byte, n)
		salts   = make([][]byte, n)
		hashes  = make([][]byte, n)
	)
	for i := range recs {
		r := &recs[i]
		ids[i], kinds[i], callers[i], ats[i] = r.ID, string(r.Kind), r.Partner, storeutil.Time(r.At)
		bodies[i], salts[i], hashes[i] = nonNil(r.Body), nonNil(r.Salt), r.Hash[:]
	}
	var first, inserted int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Lock and insert in one round trip; the insert is a later
		// statement, so it takes its snapshot once the lock is held.
		b := &pgx.Batch{}
		b.Queue(`SELECT pg_advisory_xact_lock($1, $2)`, appendLockClass, s.appendLockKey)
		b.Queue(appendSQL, ids, kinds, callers, ats, bodies, salts, hashes)
		br := tx.SendBatch(ctx, b)
		if _, err := br.Exec(); err != nil {
			br.Close()
			return fmt.Errorf("take append lock: %w", err)
		}
		if err := br.QueryRow().Scan(&first, &inserted); err != nil {
			br.Close()
			return mapErr(err)
		}
		return br.Close()
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: append evidence: %w", err)
	}
	if inserted != int64(n) {
		return 0, fmt.Errorf("postgres: append evidence: inserted %d of %d records", inserted, n)
	}
	return uint64(first), nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Record returns the record with the given ID, or evidence.ErrNotFound.
func (s *Store) Record(ctx context.Context, id string) (evidence.Record, error) {
	var (
		r    evidence.Record
		idx  int64
		kind string
		hash []byte
	)
	err := s.pool.QueryRow(ctx, `SELECT idx, id, kind, partner, at, body, salt, hash
		FROM evidence WHERE id = $1`, id).Scan(&idx, &r.ID, &kind, &r.Partner, &r.At, &r.Body, &r.Salt, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return evidence.Record{}, fmt.Errorf("postgres: evidence %q: %w", id, evidence.ErrNotFound)
	}
	if err != nil {
		return evidence.Record{}, fmt.Errorf("postgres: evidence %q: %w", id, err)
	}
	if len(hash) != len(r.Hash) {
		return evidence.Record{}, fmt.Errorf("postgres: evidence %q: stored hash is %d bytes", id, len(hash))
	}
	r.Index = uint64(idx)
	r.Kind = evidence.Kind(kind)
	r.At = storeutil.Time(r.At)
	copy(r.Hash[:], hash)
	return r, nil
}
