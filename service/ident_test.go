package service_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// minorID is a person born on 15 March 2010, a minor until 15 March 2028.
const minorID = "450102201003150016"

func nanningEntry(subject string, decided time.Time) service.EntryInput {
	return service.EntryInput{
		Subject: subject, List: "nanning_black", OriginatingDepartment: "南宁市城市管理局",
		Reason: "失信事由", LegalBasis: "南宁市城市管理领域失信联合惩戒办法(试行)", DecidedAt: decided, PublishedAt: decided,
	}
}

// A person under 18 at the decision date is not listed on a list that
// requires full civil capacity (篇四 第二条): creating, patching and importing
// are refused with ErrFullCapacityRequired and nothing is written.
func TestServiceFullCapacityRequired(t *testing.T) {
	if _, err := policy.ParseResidentID(minorID); err != nil {
		t.Fatalf("test identifier: %v", err)
	}
	ctx := context.Background()
	decided := cstAt(2026, 3, 2, 10)
	w := newLCWorld(t, decided)

	_, err := w.entries.Create(ctx, nanningEntry(minorID, decided))
	if !errors.Is(err, policy.ErrFullCapacityRequired) {
		t.Fatalf("create: %v, want ErrFullCapacityRequired", err)
	}
	imported, err := w.entries.Import(ctx, []service.EntryInput{
		nanningEntry(lcPerson, decided), nanningEntry(minorID, decided),
	}, []int{2, 3})
	var ie *service.ImportError
	if !errors.As(err, &ie) || len(ie.Lines) != 1 || ie.Lines[0].Line != 3 || !errors.Is(ie.Lines[0].Err, policy.ErrFullCapacityRequired) {
		t.Fatalf("import: %v (%d imported), want line 3 refused with ErrFullCapacityRequired", err, len(imported))
	}
	list, err := w.entries.List(ctx, service.EntryFilter{Limit: 10})
	if err != nil || len(list) != 0 {
		t.Fatalf("entries after the refusals: %d, %v; want none", len(list), err)
	}
	for _, a := range w.acts() {
		if a == string(service.ActEntryCreated) || a == string(service.ActEntriesImported) {
			t.Errorf("act %s recorded for a refused write", a)
		}
	}

	// The same person, of age, may be listed; a decision date moved back
	// into minority by a patch is refused and leaves the entry as it was.
	adult := cstAt(2028, 3, 15, 0)
	w.clock.Set(adult)
	e, err := w.entries.Create(ctx, nanningEntry(minorID, adult))
	if err != nil {
		t.Fatalf("create at 18: %v", err)
	}
	back := cstAt(2028, 3, 14, 12)
	if _, err := w.entries.Patch(ctx, e.ID, service.EntryPatch{DecidedAt: &back}, 0); !errors.Is(err, policy.ErrFullCapacityRequired) {
		t.Fatalf("patch: %v, want ErrFullCapacityRequired", err)
	}
	got, err := w.entries.Get(ctx, e.ID)
	if err != nil || got.Version != e.Version || !got.DecidedAt.Equal(e.DecidedAt) {
		t.Fatalf("entry after a refused patch: %+v, %v", got, err)
	}
}

// A first-generation 15-digit number is converted to 18 digits wherever a
// subject enters: entries, checks, status and filters all use the 18-digit
// form, so the two forms find the same records.
func TestServiceLegacyResidentID(t *testing.T) {
	ctx := context.Background()
	const legacy, full = "110105491231002", "11010519491231002X"
	pub := cstAt(2026, 3, 2, 10)
	w := newLCWorld(t, pub)
	e := w.create(service.EntryInput{
		Subject: legacy, List: "court_dishonest_debtor", OriginatingDepartment: "人民法院",
		Reason: "失信被执行人", LegalBasis: "最高人民法院关于公布失信被执行人名单信息的若干规定", DecidedAt: pub, PublishedAt: pub,
	})
	if e.Subject.Value != full || e.Subject.Kind != policy.KindPerson {
		t.Fatalf("entry subject %+v, want %s", e.Subject, full)
	}
	org := w.create(safetyEntry(pub, policy.ResponsiblePerson{ID: legacy, Role: policy.RoleLegalRepresentative}))
	if org.ResponsiblePersons[0].ID != full {
		t.Fatalf("responsible person %q, want %s", org.ResponsiblePersons[0].ID, full)
	}
	w.clock.Set(pub.Add(time.Hour))
	for _, raw := range []string{legacy, full} {
		ans := w.check(raw, "administrative_licensing", nil)
		if ans.Subject.ID != full {
			t.Errorf("check of %s answered for %q, want %s", raw, ans.Subject.ID, full)
		}
		if len(ans.Entries) < 2 {
			t.Errorf("check of %s found %d entries, want its own and the organisation's", raw, len(ans.Entries))
		}
		st, err := w.checker.SubjectStatus(ctx, admin, raw, nil)
		if err != nil || st.Subject.ID != full {
			t.Errorf("status of %s: %+v, %v", raw, st.Subject, err)
		}
		list, err := w.entries.List(ctx, service.EntryFilter{Subject: raw, Limit: 10})
		if err != nil || len(list) != 1 || list[0].ID != e.ID {
			t.Errorf("entries of %s: %d, %v", raw, len(list), err)
		}
	}
	// The error for an all-digit value that is neither kind names both.
	_, err := w.checker.Check(ctx, admin, service.CheckRequest{Subject: "110105194912310021", Action: "administrative_licensing"})
	if err == nil || !strings.Contains(err.Error(), "not a resident ID number: check digit is 1, want X; not a unified social credit code") {
		t.Fatalf("check of a bad number: %v", err)
	}
}
