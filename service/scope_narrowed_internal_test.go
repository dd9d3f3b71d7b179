package service

import (
	"errors"
	"testing"

	"github.com/credgate/credgate/policy"
)

// An event is kept for a caller by the kind of its subject and the
// actions of its changes, by the rules of a check; a department's event
// by its subscription, whatever its actions; an event with no change (an
// auditor's) by its subject alone; a body that cannot be read not at all.
func TestEventInScope(t *testing.T) {
	t.Parallel()
	bank := Caller{ClientID: "bank", Role: RolePartner, Actions: []string{"bank_credit"},
		SubjectKinds: []policy.SubjectKind{policy.KindOrganization}}
	for name, c := range map[string]struct {
		caller Caller
		body   string
		want   bool
	}{
		"its kind and action":            {bank, `{"subject":{"kind":"organization"},"subscription":["watchlist"],"changes":[{"action":"bank_credit"}]}`, true},
		"one of its actions":             {bank, `{"subject":{"kind":"organization"},"subscription":["checked"],"changes":[{"action":"bond_issuance"},{"action":"bank_credit"}]}`, true},
		"a kind taken":                   {bank, `{"subject":{"kind":"person"},"subscription":["watchlist"],"changes":[{"action":"bank_credit"}]}`, false},
		"every action taken":             {bank, `{"subject":{"kind":"organization"},"subscription":["checked"],"changes":[{"action":"bond_issuance"}]}`, false},
		"a department's":                 {bank, `{"subject":{"kind":"organization"},"subscription":["authority"],"changes":[{"action":"bond_issuance"}]}`, true},
		"a department's of a kind taken": {bank, `{"subject":{"kind":"person"},"subscription":["authority"],"changes":[{"action":"bank_credit"}]}`, false},
		"no change":                      {Caller{ClientID: "aud", Role: RoleAuditor}, `{"subject":{"kind":"person"},"subscription":["watchlist"],"changes":[]}`, true},
		"unreadable":                     {bank, `{"subject":`, false},
	} {
		if got := eventInScope(c.caller, []byte(c.body)); got != c.want {
			t.Errorf("%s: %v, want %v", name, got, c.want)
		}
	}
}

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
