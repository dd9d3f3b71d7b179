package service

import (
	"errors"
	"testing"

	"github.com/credgate/credgate/policy"
)

// A job stored before disclosures were kept is taken to disclose as much
// as its caller could be shown: narrowing any of it refuses its results.
func TestUnrecordedDisclosureIsTheCallers(t *testing.T) {
	t.Parallel()
	e := Caller{ClientID: "e", Role: RolePartner, Actions: []string{"bank_credit"}, Visibility: VisibilityFull}
	j := ScreeningJob{ID: "scr_1", Partner: "e", Caller: e, Action: "bank_credit"}
	if err := j.coveredBy(e); err != nil {
		t.Fatalf("its own caller: %v", err)
	}
	orgs := e
	orgs.SubjectKinds = []policy.SubjectKind{policy.KindOrganization}
	standard := e
	standard.Visibility = VisibilityStandard
	for _, c := range []Caller{orgs, standard} {
		if err := j.coveredBy(c); !errors.Is(err, ErrScopeNarrowed) {
			t.Errorf("narrowed to %+v: %v, want ErrScopeNarrowed", c, err)
		}
	}
	// Recorded: only what was answered counts.
	j.Disclosed = &ScreeningDisclosure{Visibility: VisibilityStandard, Kinds: []policy.SubjectKind{policy.KindOrganization}}
	for _, c := range []Caller{orgs, standard} {
		if err := j.coveredBy(c); err != nil {
			t.Errorf("narrowed to %+v, the job answering organisations at standard: %v", c, err)
		}
	}
}
