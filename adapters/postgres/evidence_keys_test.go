package postgres_test

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/internal/testenv"
)

// TestEvidenceKeysAppendOnly: a verifier key, once stored, stays (0027),
// so that receipts signed before a rotation stay verifiable from the
// served list.
func TestEvidenceKeysAppendOnly(t *testing.T) {
	t.Parallel()
	url, admin := testenv.Postgres(t)
	schema := testenv.FreshSchema(t, "credgate_test")
	s := openIn(t, url, schema, postgres.WithMaxConns(2))
	const key = "credgate.test/evidence+00000001+AAAA"
	if err := s.AddVerifierKey(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	ident := pgx.Identifier{schema}.Sanitize()
	for _, q := range []string{
		`DELETE FROM ` + ident + `.evidence_keys`,
		`UPDATE ` + ident + `.evidence_keys SET vkey = 'other'`,
		`TRUNCATE ` + ident + `.evidence_keys`,
	} {
		if _, err := admin.Exec(t.Context(), q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want append-only refusal", q, err)
		}
	}
	if err := s.AddVerifierKey(t.Context(), key); err != nil {
		t.Fatalf("adding a key again: %v", err)
	}
	if keys, err := s.VerifierKeys(t.Context()); err != nil || len(keys) != 1 {
		t.Fatalf("keys: %v %v", keys, err)
	}
}
