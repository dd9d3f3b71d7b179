package audit_test

import (
	"slices"
	"strings"
	"testing"
)

// TestCheckRecordsListsErased erases two bodies the documented way: the
// full audit finds nothing wrong, and lists the erased positions so they
// can be matched against the erasure requests.
func TestCheckRecordsListsErased(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newServer(t)
	s.checks(t, 6)
	if _, err := s.db(t).ExecContext(ctx, `UPDATE evidence SET body = x'', salt = x'' WHERE idx IN (1, 4)`); err != nil {
		t.Fatal(err)
	}
	a, rep := s.follow(t, s.admin)
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
