package sqlcommon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/credgate/credgate/adapters/internal/storeutil"
	"github.com/credgate/credgate/evidence"
)

// Idempotency keys (POST /v1/checks, Idempotency-Key): a check sent with a
// key carries it in its body (idempotency_key), and the appending
// transaction maps (partner, key) to the check in check_idempotency
// (SQLite migration 0024, PostgreSQL 0028). Only keyed checks write a
// row: a keyless one costs one comparison here and no index write.

// insertIdempotencySQL maps one keyed check; OR IGNORE for a record
// integrated twice (a spool's retry), which maps the same row.
const insertIdempotencySQL = `INSERT OR IGNORE INTO check_idempotency (partner, idem_key, checked_at, check_id) VALUES ($1, $2, $3, $4)`

// idempotentCheckSQL is the first check a partner sent with a key since a
// time: the one a retry within the key's lifetime replays.
const idempotentCheckSQL = `SELECT check_id FROM check_idempotency
	WHERE partner = $1 AND idem_key = $2 AND checked_at >= $3
	ORDER BY checked_at, check_id LIMIT 1`

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
