package policy

import (
	"fmt"
	"slices"
	"time"
)

// Outcome is the answer to a check: the strongest effect among the measures
// applied, incentive when only red-list measures apply, else clear.
type Outcome string

// Outcomes of a check.
const (
	OutcomeProhibit     Outcome = "prohibit"
	OutcomeRestrict     Outcome = "restrict"
	OutcomeStrictReview Outcome = "strict_review"
	OutcomeReference    Outcome = "reference"
	OutcomeIncentive    Outcome = "incentive"
	OutcomeClear        Outcome = "clear"
	// OutcomeUnverifiable: the data the answer would rest on is older than
	// its bound (a store or upstream source could not be reached), so
	// credgate cannot say what applies. Decide never returns it; the check
	// use case does, so that unknown data is never answered as clear.
	OutcomeUnverifiable Outcome = "unverifiable"
)

// MeasureStatus says whether a matching measure is applied.
type MeasureStatus string

// Measure states in a decision.
const (
	MeasureApplied MeasureStatus = "applied"
	// MeasureSuspended: the entry is under objection; the measure does not count.
	MeasureSuspended MeasureStatus = "suspended"
	// MeasureOverridden: an incentive that a restriction outranks (篇七 第六条).
	MeasureOverridden MeasureStatus = "overridden"
)

// Via says how an organisation's entry reaches a person (落实到人).
type Via struct {
	Organization string `json:"organization"`
	Role         Role   `json:"role"`
}

// AppliedMeasure is a catalogue measure matched by an entry.
type AppliedMeasure struct {
	Measure *Measure
	EntryID string
	Status  MeasureStatus
	Via     *Via
	// Until is the end of the measure's own term, for measures that have
	// one (Measure.Term); nil otherwise.
	Until *time.Time
}

// Finding is an entry that affects the subject at the decision time.
type Finding struct {
	Entry  *Entry
	Status EntryStatus
	Via    *Via
}

// Decision is the result of Decide.
type Decision struct {
	Outcome  Outcome
	Measures []AppliedMeasure
	Findings []Finding
}

// Decide is the check: given the entries that name subject (directly, or as
// a responsible person of an organisation), the business action and the
// time, it returns the outcome and the measures to apply, each with the entry
// that triggered it. It is pure and allocates only for the result.
func Decide(c *Catalog, subject SubjectID, action string, entries []Entry, at time.Time) (Decision, error) {
	if _, ok := c.actionByID[action]; !ok {
		return Decision{}, fmt.Errorf("%w %q", ErrUnknownAction, action)
	}
	d := Decision{Outcome: OutcomeClear}
	best := -1
	punitive := false
	for i := range entries {
		e := &entries[i]
		status := e.StatusAt(at)
		// termOnly: the entry has expired, but measures with a term of
		// their own may outlive it (篇四 第十四条 从其期限).
		termOnly := false
		switch status {
		case StatusActive, StatusUnderObjection, StatusAwaitingExit:
		case StatusExpired:
			if !c.termLists[e.List] {
				continue
			}
			termOnly = true
		default:
			continue
		}
		l, ok := c.listByID[e.List]
		if !ok {
			// An entry on a list the catalogue no longer has cannot carry
			// measures: only catalogue measures may be applied (篇二).
			continue
		}
		var via *Via
		if e.Subject != subject {
			via = reach(l, e, subject)
			if via == nil {
				continue
			}
		}
		// An expired entry is a finding only when one of its measures
		// still applies; the others are findings whatever the action.
		if !termOnly {
			d.Findings = append(d.Findings, Finding{Entry: e, Status: status, Via: via})
		}
		for _, m := range c.measuresFor(e.List, action) {
			if !measureReaches(m, subject.Kind, via) {
				continue
			}
			var until *time.Time
			if !m.Term.IsZero() {
				end := e.PublishedAt.AddDate(m.Term.Years, m.Term.Months, m.Term.Days).Add(e.Suspended())
				if !at.Before(end) {
					continue
				}
				until = &end
			} else if termOnly {
				continue
			}
			if termOnly && (len(d.Findings) == 0 || d.Findings[len(d.Findings)-1].Entry != e) {
				d.Findings = append(d.Findings, Finding{Entry: e, Status: status, Via: via})
			}
			ms := MeasureApplied
			if status == StatusUnderObjection {
				ms = MeasureSuspended
			}
			d.Measures = append(d.Measures, AppliedMeasure{Measure: m, EntryID: e.ID, Status: ms, Via: via, Until: until})
			if ms != MeasureApplied {
				continue
			}
			if m.Effect != EffectIncentive {
				punitive = true
			}
			if r := m.Effect.rank(); r > best {
				best = r
				d.Outcome = Outcome(m.Effect)
			}
		}
	}
	if punitive {
		for i := range d.Measures {
			if d.Measures[i].Measure.Effect == EffectIncentive && d.Measures[i].Status == MeasureApplied {
				d.Measures[i].Status = MeasureOverridden
			}
		}
	}
	return d, nil
}

// reach finds the role through which an organisation's entry reaches the
// person subject, per the list's rule; nil when it does not.
func reach(l *List, e *Entry, subject SubjectID) *Via {
	if subject.Kind != KindPerson || e.Subject.Kind != KindOrganization {
		return nil
	}
	for _, p := range e.ResponsiblePersons {
		if p.ID == subject.Value && slices.Contains(l.Reaches, p.Role) {
			return &Via{Organization: e.Subject.Value, Role: p.Role}
		}
	}
	return nil
}

// measureReaches reports whether m acts on a subject of kind k, directly or
// through via.
func measureReaches(m *Measure, k SubjectKind, via *Via) bool {
	if !slices.Contains(m.AppliesTo, k) {
		return false
	}
	if via == nil || len(m.Roles) == 0 {
		return true
	}
	return slices.Contains(m.Roles, via.Role)
}
