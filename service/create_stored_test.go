package service_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// An entry created again (a create retried after its answer was lost, a
// form sent twice), or imported again through the in-memory Import, is
// refused as an invalid entry naming the stored one, revoked or not, on
// either store, and nothing new is stored or recorded. Another decision
// (another day) of the same department is a new entry.
func TestServiceCreateRefusesStoredEntry(t *testing.T) {
	t.Parallel()
	eachEntryStore(t, func(t *testing.T, st revStore) {
		ctx := context.Background()
		w := newRevWorld(t, st, cstAt(2026, 6, 1, 9))
		in := safetyEntry(cstAt(2026, 5, 20, 0))
		first, err := w.entries.Create(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		acts := len(w.audit.bodies(t))
		again := in
		again.OriginatingDepartment = " 应急管理局 "
		again.DecidedAt = again.DecidedAt.UTC()
		again.Reason = "另一事由"
		refused := func(step string, err error) {
			t.Helper()
			if !errors.Is(err, policy.ErrInvalidEntry) || !errors.Is(err, service.ErrDuplicateEntry) || !strings.Contains(err.Error(), first.ID) {
				t.Fatalf("%s: %v, want an invalid, duplicate entry naming %s", step, err, first.ID)
			}
		}
		_, err = w.entries.Create(ctx, again)
		refused("created again", err)
		_, err = w.entries.Import(ctx, []service.EntryInput{again}, []int{7})
		var ie *service.ImportError
		if !errors.As(err, &ie) || len(ie.Lines) != 1 || ie.Lines[0].Line != 7 {
			t.Fatalf("imported again: %v", err)
		}
		refused("imported again", ie.Lines[0].Err)
		if _, err := w.entries.Revoke(ctx, first.ID, "异议成立"); err != nil {
			t.Fatal(err)
		}
		acts++
		_, err = w.entries.Create(ctx, again)
		refused("created again after its revocation", err)
		if n := len(w.audit.bodies(t)); n != acts {
			t.Fatalf("refused creates recorded %d acts", n-acts)
		}
		list, err := w.entries.List(ctx, service.EntryFilter{Subject: lcOrg})
		if err != nil || len(list) != 1 {
			t.Fatalf("entries of the subject: %d %v", len(list), err)
		}
		other := in
		other.DecidedAt = other.DecidedAt.AddDate(0, 0, 1)
		if _, err := w.entries.Create(ctx, other); err != nil {
			t.Fatalf("another decision: %v", err)
		}
	})
}
