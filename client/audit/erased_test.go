package audit_test

import (
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/client/audit"
)

// TestCheckRecordsListsErased erases two bodies the documented way: the
// full audit finds nothing wrong, and lists the erased positions so they
// can be matched against the erasure requests.
func TestCheckRecordsListsErased(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newServer(t)
	s.checks(t, 6)
	db, err := sql.Open("sqlite", filepath.Join(s.dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `UPDATE evidence SET body = x'', salt = x'' WHERE idx IN (1, 4)`); err != nil {
		t.Fatal(err)
	}
	vs, err := audit.Verifiers([]string{s.signer.VerifierKey()})
	if err != nil {
		t.Fatal(err)
	}
	a := audit.New(s.admin, vs)
	rep, err := a.Follow(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.CheckRecords(ctx, rep); err != nil || !rep.OK() {
		t.Fatalf("log with erased bodies: %+v %v", rep.Problems, err)
	}
	if !slices.Equal(rep.Erased, []uint64{1, 4}) {
		t.Fatalf("erased %v, want [1 4]", rep.Erased)
	}
	want := "erased: 2 records' bodies were erased (each still proven in the tree), at positions 1, 4"
	if !slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.Contains(n, want) }) {
		t.Fatalf("notes %q, want %q", rep.Notes, want)
	}
}
