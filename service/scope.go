package service

import (
	"encoding/json"
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

// ErrScopeNarrowed: the partner's scope was narrowed (PATCH
// /v1/admin/partners/{id}) since it was given what it asks for, which
// its scope now no longer covers: a screening job whose action it may no
// longer check, or whose stored answers disclose more (a kind of subject,
// a visibility) than it may now be shown. Stored answers are proven by
// the job's tree and cannot be re-rendered narrower.
var ErrScopeNarrowed = errors.New("the partner's scope was narrowed")

// What a partner receives other than a check's answer — a screening
// job's answers and its results, events of the feed and webhook
// deliveries — follows its current scope, by the rules a check applies
// (mayCheck, mayCheckKind, effectiveVisibility): then is the caller as it
// was when it asked (a job as submitted), now as its partner is now.

// mayStillCheckKind reports whether a caller that asked as then may, as
// now, still be told about a subject of kind k: both allow it.
func mayStillCheckKind(then, now Caller, k policy.SubjectKind) bool {
	return then.mayCheckKind(k) && now.mayCheckKind(k)
}

// narrowedTo is then (a job's caller as submitted) seen at a visibility
// no wider than now's: what the answers made from now on are encoded at.
// The rest of then (its region, its id) stays what the job was submitted
// with.
func narrowedTo(then, now Caller) Caller {
	c := then
	if v := now.effectiveVisibility(); v != VisibilityFull && then.effectiveVisibility() == VisibilityFull {
		c.Visibility = v
	}
	return c
}

// eventInScope reports whether a stored event (its body) may still be
// served or sent to c as c is now: not when its subject is of a kind c may
// no longer check, nor when every change it tells concerns actions c may
// no longer check (a department's event, told by the authorities it
// subscribed to rather than by its own actions, is kept by its
// subscription). An event carries no more than a check at standard
// visibility shows (measures, the entry's id, list and status; never its
// reason or originating department), so visibility leaves it as it is.
// Its body is never rewritten: it is what events_published recorded the
// hash of. A body that cannot be read is not served.
func eventInScope(c Caller, body []byte) bool {
	var ev struct {
		Subject struct {
			Kind policy.SubjectKind `json:"kind"`
		} `json:"subject"`
		Subscription []string `json:"subscription"`
		Changes      []struct {
			Action string `json:"action"`
		} `json:"changes"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return false
	}
	if !c.mayCheckKind(ev.Subject.Kind) {
		return false
	}
	if len(ev.Changes) == 0 || slices.Contains(ev.Subscription, SubscribedAuthority) {
		return true
	}
	for _, ch := range ev.Changes {
		if c.mayCheck(ch.Action) {
			return true
		}
	}
	return false
}
