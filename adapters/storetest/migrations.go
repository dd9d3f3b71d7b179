package storetest

import (
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/credgate/credgate/service"
)

// LegacyPartnerSQL inserts, into a database migrated by the runner credgate
// had before goose, a partner (client id "c1") with the columns of
// migrations 0001-0004; the %s is a time literal of the dialect.
const LegacyPartnerSQL = `INSERT INTO partners (id, client_id, name, role, actions, secret_hash, status,
	created_at, updated_at, version) VALUES ('p1', 'c1', 'n', 'partner', '[]', '', 'active', %[1]s, %[1]s, 1)`

// LegacyVersions are the migrations the former runner had applied.
const LegacyVersions = 5

// CheckMigrations checks that goose recorded each of the embedded
// migrations (files, named NNNN_name.sql) exactly once, in the order of
// their numbers (applied: the versions recorded as applied, in the order
// they were). Numbers need not be consecutive: each change takes its own.
func CheckMigrations(t *testing.T, applied []int64, files []string) {
	t.Helper()
	var want []int64
	for _, f := range files {
		n, _, _ := strings.Cut(path.Base(f), "_")
		v, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			t.Fatalf("migration %s: no version number: %v", f, err)
		}
		want = append(want, v)
	}
	slices.Sort(want)
	if !slices.Equal(applied, want) {
		t.Fatalf("goose recorded %v, want each of %v once", applied, want)
	}
}

// CheckAdopted checks a store opened on a database of the former runner
// (LegacyVersions applied, LegacyPartnerSQL inserted): the partner is
// kept, and migration 0006 was applied on top (its region round-trips).
func CheckAdopted(t *testing.T, s service.Store) {
	t.Helper()
	ctx := t.Context()
	p, err := s.PartnerByClientID(ctx, "c1")
	if err != nil || p.Region != "" {
		t.Fatalf("partner kept through adoption: %+v, %v", p, err)
	}
	p.Version, p.Region = 2, "370100"
	if err := s.UpdatePartner(ctx, p); err != nil {
		t.Fatalf("0006 applied: %v", err)
	}
	if p, err := s.PartnerByClientID(ctx, "c1"); err != nil || p.Region != "370100" {
		t.Fatalf("after 0006: %+v, %v", p, err)
	}
}
