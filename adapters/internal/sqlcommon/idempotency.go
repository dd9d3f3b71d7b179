package sqlcommon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/credgate/credgate/adapters/internal/storeutil"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/service"
)

// Idempotency keys (POST /v1/checks, Idempotency-Key): a check sent with a
// key carries it in its body (idempotency_key), and the appending
// transaction maps (partner, key) to the check in check_idempotency
// (SQLite migration 0024, PostgreSQL 0028). Only keyed checks write a
// row: a keyless one costs one comparison here and no index write. The
// checks of a keyed batch are mapped under service.BatchIdempotencyKey(key)
// (their facts say so). Rows past the key's lifetime are deleted by
// PruneIdempotencyKeys (serve's sweep, service/idempotency_sweep.go).

// insertIdempotencySQL maps one keyed check; OR IGNORE for a record
// integrated twice (a spool's retry), which maps the same row.
const insertIdempotencySQL = `INSERT OR IGNORE INTO check_idempotency (partner, idem_key, checked_at, check_id) VALUES ($1, $2, $3, $4)`

// idempotentCheckSQL is the first check a partner sent with a key since a
// time: the one a retry within the key's lifetime replays.
const idempotentCheckSQL = `SELECT check_id FROM check_idempotency
	WHERE partner = $1 AND idem_key = $2 AND checked_at >= $3
	ORDER BY checked_at, check_id LIMIT 1`

// idempotentChecksSQL is the checks a partner sent since a time with a
// key alone ($2) or in a batch ($3, service.BatchIdempotencyKey): two
// probes of the primary key, in the order they were checked.
const idempotentChecksSQL = `SELECT idem_key, check_id FROM check_idempotency
	WHERE partner = $1 AND idem_key IN ($2, $3) AND checked_at >= $4
	ORDER BY checked_at, check_id LIMIT $5`

// pruneIdempotencySQL deletes, oldest first, at most $2 rows checked
// before $1, found through check_idempotency_checked_at (SQLite 0025,
// PostgreSQL 0029), each then by its key: SQLite probes the index again
// for each row of the list (the index holds the table's key, WITHOUT
// ROWID). The engines do not share one text that plans well: PostgreSQL
// joins this one by hashing a whole scan of the table (250 ms for 200 000
// rows, growing with it), so it runs pruneIdempotencyPGSQL.
const pruneIdempotencySQL = `DELETE FROM check_idempotency
	WHERE (partner, idem_key, checked_at, check_id) IN (
		SELECT partner, idem_key, checked_at, check_id FROM check_idempotency
		WHERE checked_at < $1 ORDER BY checked_at LIMIT $2)`

// pruneIdempotencyPGSQL is pruneIdempotencySQL for PostgreSQL: the rows
// are deleted by their ctid (a Tid Scan), and the ones another replica's
// sweep holds are left to it (SKIP LOCKED), so that sweeps running at once
// neither wait on nor deadlock over each other's rows. 1000 rows of
// 200 000 in about 6 ms.
const pruneIdempotencyPGSQL = `DELETE FROM check_idempotency WHERE ctid = ANY(ARRAY(
	SELECT ctid FROM check_idempotency WHERE checked_at < $1 ORDER BY checked_at LIMIT $2 FOR UPDATE SKIP LOCKED))`

// anyIdempotencyBeforeSQL finds whether any row is older than $1: one
// probe of check_idempotency_checked_at.
const anyIdempotencyBeforeSQL = `SELECT 1 FROM check_idempotency WHERE checked_at < $1 LIMIT 1`

// idempotencyMember is how a body names its key; a body without it has
// none, whatever else it holds.
var idempotencyMember = []byte(`"idempotency_key":`)

// IdempotencyKey is the idempotency key of a check record r, "" for a
// record of another kind or a check sent without one. The checker's facts
// say it; a record without them (spooled, re-run as of a past time) is
// read, and only when its body names a key at all.
func IdempotencyKey(r *evidence.Record) string {
	if r.Kind != evidence.KindCheck {
		return ""
	}
	if f := r.Check; f != nil {
		return f.IdempotencyKey
	}
	if !bytes.HasPrefix(r.Body, checkPrefix) || !bytes.Contains(r.Body, idempotencyMember) {
		return ""
	}
	b := r.Body
	sp, end, ok := jsonValue(b, jsonSpace(b, 0), 0)
	if !ok || jsonSpace(b, end) != len(b) || sp.kind != '{' {
		return ""
	}
	var m [1]jsonSpan
	if !jsonMembers(b, sp, m[:], "idempotency_key") || m[0].kind != '"' {
		return ""
	}
	var key string
	if json.Unmarshal(b[m[0].start:m[0].end], &key) != nil {
		return ""
	}
	return key
}

// idempotencyInserts appends the mapping of each keyed check of recs.
func idempotencyInserts(stmts []Stmt, recs []evidence.Record) []Stmt {
	for i := range recs {
		r := &recs[i]
		if r.Kind != evidence.KindCheck || (r.Check != nil && r.Check.IdempotencyKey == "") {
			continue
		}
		if key := IdempotencyKey(r); key != "" {
			stmts = append(stmts, Stmt{insertIdempotencySQL, []any{r.Partner, key, storeutil.Time(r.At), r.ID}})
		}
	}
	return stmts
}

// CheckByIdempotencyKey returns the id of the first check partner sent
// with key at or after since, or evidence.ErrNotFound.
func (s *Store) CheckByIdempotencyKey(ctx context.Context, partner, key string, since time.Time) (string, error) {
	var id string
	err := s.db.QueryRow(ctx, idempotentCheckSQL, partner, key, storeutil.Time(since)).Scan(&id)
	if isNoRows(err) {
		return "", fmt.Errorf("idempotency key: %w", evidence.ErrNotFound)
	}
	if err != nil {
		return "", s.errf("idempotency key: %w", err)
	}
	return id, nil
}

// IdempotentChecks returns the checks partner sent at or after since with
// key, alone or in a batch, in the order they were checked, at most limit.
func (s *Store) IdempotentChecks(ctx context.Context, partner, key string, since time.Time, limit int) ([]service.IdempotentCheck, error) {
	batchKey := service.BatchIdempotencyKey(key)
	rows, err := s.db.Query(ctx, idempotentChecksSQL, partner, key, batchKey, storeutil.Time(since), limit)
	if err != nil {
		return nil, s.errf("idempotency key: %w", err)
	}
	defer rows.Close()
	out := []service.IdempotentCheck{}
	for rows.Next() {
		var k, id string
		if err := rows.Scan(&k, &id); err != nil {
			return nil, s.errf("idempotency key: %w", err)
		}
		out = append(out, service.IdempotentCheck{CheckID: id, Batch: k == batchKey})
	}
	if err := rows.Err(); err != nil {
		return nil, s.errf("idempotency key: %w", err)
	}
	return out, nil
}

// PruneIdempotencyKeys deletes at most limit rows of check_idempotency
// checked before before, the oldest first, in one statement (its own
// short transaction), and returns how many it deleted; fewer than limit
// means none older is left but those another sweep holds.
func (s *Store) PruneIdempotencyKeys(ctx context.Context, before time.Time, limit int) (int64, error) {
	// A read first: with nothing to delete (the usual case) the sweep
	// takes no write lock, nor SQLite's one write connection.
	var one int
	err := s.db.QueryRow(ctx, anyIdempotencyBeforeSQL, storeutil.Time(before)).Scan(&one)
	if isNoRows(err) {
		return 0, nil
	}
	if err != nil {
		return 0, s.errf("prune idempotency keys: %w", err)
	}
	q := pruneIdempotencySQL
	if s.d.SkipLocked != "" {
		// Rows locked one by one: PostgreSQL.
		q = pruneIdempotencyPGSQL
	}
	n, err := s.db.Exec(ctx, q, storeutil.Time(before), limit)
	if err != nil {
		return 0, s.errf("prune idempotency keys: %w", err)
	}
	return n, nil
}
