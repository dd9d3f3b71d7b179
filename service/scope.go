package service

import (
	"errors"
	"slices"

	"github.com/credgate/credgate/policy"
)

// ErrSubjectKindNotAllowed: the partner may not check this kind of subject
// (for example a procurement platform registered for organisations only
// asking about a person).
var ErrSubjectKindNotAllowed = errors.New("subject kind not allowed for this partner")

// Visibility is how much of the entries behind an answer a partner sees.
//
// Every partner sees the outcome, the catalogue measures that govern the
// action it checked (text, effect, legal basis, authority) and, for each
// entry in force, its list, status, dates, legal basis and — when a
// person is reached through an organisation — that organisation's code and
// the person's role. What differs is the originating department's own
// record of the case.
type Visibility string

// Visibility levels.
const (
	// VisibilityStandard (the default for partners) withholds each entry's
	// reason (失信事由) and originating department: they are the
	// originating department's internal case file, and an implementing
	// department applies measures on the list, the legal basis and the
	// catalogue, not on the case narrative.
	VisibilityStandard Visibility = "standard"
	// VisibilityFull adds reason and originating department, for partners
	// entitled to the case (a credit-sharing platform, a supervisor).
	// Administrators and auditors always see this much.
	VisibilityFull Visibility = "full"
)

// Responsible persons' identity numbers never appear in a check answer at
// any visibility: a check on an organisation names its entries, not the
// people recorded against them, and a check on a person names the
// organisation and role through which an entry reaches that person only.

func validVisibility(v Visibility) bool {
	return v == "" || v == VisibilityStandard || v == VisibilityFull
}

// effectiveVisibility is what the caller sees.
func (c Caller) effectiveVisibility() Visibility {
	if c.Role == RoleAdmin || c.Role == RoleAuditor {
		return VisibilityFull
	}
	if c.Visibility == "" {
		return VisibilityStandard
	}
	return c.Visibility
}

// mayCheckKind reports whether the caller may check a subject of kind k.
func (c Caller) mayCheckKind(k policy.SubjectKind) bool {
	return c.Role != RolePartner || len(c.SubjectKinds) == 0 || slices.Contains(c.SubjectKinds, k)
}

// redactForCaller removes from ans what the caller may not see. It runs
// before the answer is recorded, so the evidence holds exactly what left
// credgate.
func redactForCaller(ans *CheckAnswer, c Caller) {
	if c.effectiveVisibility() == VisibilityFull {
		return
	}
	for i := range ans.Entries {
		ans.Entries[i].Reason = ""
		ans.Entries[i].OriginatingDepartment = ""
	}
}

// CallerOf is the caller a partner's access token stands for.
func CallerOf(p Partner) Caller {
	return Caller{ClientID: p.ClientID, Role: p.Role, Actions: p.Actions, SubjectKinds: p.SubjectKinds, Visibility: p.Visibility,
		Region: p.Region}
}
