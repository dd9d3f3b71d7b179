package postgres_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/adapters/storetest"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/testenv"
)

// TestTreeCatchesUp: records written the way a gateway from before the
// Merkle tree did (rows only) are integrated by the next AppendBatch,
// under the append lock; a hole in them stops appends.
func TestTreeCatchesUp(t *testing.T) {
	t.Parallel()
	url, admin := testenv.Postgres(t)
	schema := testenv.FreshSchema(t, "credgate_test")
	s := openIn(t, url, schema, postgres.WithMaxConns(2))
	table := pgx.Identifier{schema, "evidence"}.Sanitize()
	storetest.CheckTreeCatchesUp(t, s, func(i int, r evidence.Record) {
		if _, err := admin.Exec(t.Context(), `INSERT INTO `+table+` (idx, id, kind, partner, at, body, salt, hash)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, i, r.ID, string(r.Kind), r.Partner, r.At, r.Body, r.Salt, r.Hash[:]); err != nil {
			t.Fatal(err)
		}
	})
}
