package policy

import (
	"fmt"
	"slices"
	"strings"
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
	// MeasureOverridden: an incentive withheld while a black-list entry is
	// in force, or outranked by a punitive measure (篇七 第六条).
	MeasureOverridden MeasureStatus = "overridden"
	// MeasureNotApplicable: the measure's scope (region, industry, subject
	// or employer type) does not cover the caller, or the subject does not
	// meet its eligibility condition; the reason says which. Applying a
	// measure beyond its scope is itself a violation (篇四 第二十四条).
	MeasureNotApplicable MeasureStatus = "not_applicable"
)

// Via says how an organisation's entry reaches a person (落实到人).
type Via struct {
	Organization string `json:"organization"`
	Role         Role   `json:"role"`
}

// AppliedMeasure is a catalogue measure matched by an entry, or by an
// eligibility condition (Basis).
type AppliedMeasure struct {
	Measure *Measure
	// EntryID is the entry that triggered the measure; empty when the
	// measure applies by eligibility.
	EntryID string
	Status  MeasureStatus
	Via     *Via
	// Until is the end of the measure's own term, for measures that have
	// one (Measure.Term); nil otherwise.
	Until *time.Time
	// Basis is BasisEligibility for a red-list measure granted by its
	// eligibility condition rather than a red entry; empty for entries.
	Basis Basis
	// Reason says why a measure is not applied (out of scope, withheld,
	// outranked) or, for eligibility, what made the subject eligible.
	Reason string
}

// Basis is how a measure came to be in a decision.
type Basis string

// BasisEligibility: the subject meets the measure's eligibility condition
// (篇三 二(一): 连续三年无不良信用记录) without a red entry.
const BasisEligibility Basis = "eligibility"

// Finding is an entry that affects the subject at the decision time.
type Finding struct {
	Entry  *Entry
	Status EntryStatus
	Via    *Via
	// Disclosed says whether a partner's answer shows the finding: true
	// unless the entry's list is kept by the department that recorded it
	// (List.KeptByDepartment, 篇十三 第七条(二)) and no measure of the
	// decision rests on the entry. A measure that names the entry makes
	// it its basis, which the caller must be able to cite. Administrators'
	// and auditors' views show every finding.
	Disclosed bool
}

// Decision is the result of Decide.
type Decision struct {
	Outcome  Outcome
	Measures []AppliedMeasure
	Findings []Finding
}

// CheckContext is what the caller states about itself and the business
// at hand, against which measure scopes are matched. Region "" means the
// caller has no region: national measures only.
type CheckContext struct{ Region, Industry, SubjectType, EmployerType string }

// Query is one check: who, for which business action, at which (valid)
// time, in which context.
type Query struct {
	Subject SubjectID
	Action  string
	// At is the time whose standing is asked (valid time).
	At      time.Time
	Context CheckContext
	// Violations are the decision times of the violation records
	// (不良信用记录) of the subject known to the caller, for eligibility.
	Violations []time.Time
	// ViolationsUnknown says the violation records could not be read:
	// no eligibility can then be established (the measures are listed as
	// not applicable, with that reason), while everything else is decided.
	ViolationsUnknown bool
}

// Decide is the check: given the entries that name the subject (directly,
// or as a responsible person of an organisation), the business action, the
// time and the caller's context, it returns the outcome and the measures,
// each with the entry that triggered it and its status. It is pure and
// allocates only for the result.
//
// Measures whose scope the context does not meet are listed as
// not_applicable with the reason; incentives are withheld while any
// black-list entry reaching the subject is in force, or outranked when a
// punitive measure applies; a red-list measure with an eligibility
// condition applies without a red entry to a subject that meets it. The
// outcome counts applied measures only. Each finding says whether a
// partner may be shown it (Finding.Disclosed): not an entry on a list kept
// by its recording department that no measure of the decision rests on.
func Decide(c *Catalog, q Query, entries []Entry) (Decision, error) {
	action, ok := c.actionByID[q.Action]
	if !ok {
		return Decision{}, fmt.Errorf("%w %q", ErrUnknownAction, q.Action)
	}
	d := Decision{Outcome: OutcomeClear}
	best := -1
	var outranking *Measure // the first punitive measure applied
	var black *Entry        // a black-list entry in force reaching the subject
	var blackList *List
	for i := range entries {
		e := &entries[i]
		status := e.StatusAt(q.At)
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
		if e.Subject != q.Subject {
			via = reach(l, e, q.Subject)
			if via == nil {
				continue
			}
		}
		if !termOnly && l.Kind == ListBlack && black == nil {
			black, blackList = e, l
		}
		if d.Findings == nil {
			// One allocation: there are at most as many findings as entries.
			d.Findings = make([]Finding, 0, len(entries)-i)
		}
		// An expired entry is a finding only when one of its measures
		// still applies; the others are findings whatever the action.
		if !termOnly {
			d.Findings = append(d.Findings, Finding{Entry: e, Status: status, Via: via, Disclosed: l.Disclosed()})
		}
		first := len(d.Measures) // this entry's measures start here
		for _, m := range c.measuresFor(e.List, q.Action) {
			if !measureReaches(m, q.Subject.Kind, via) {
				continue
			}
			var until *time.Time
			if !m.Term.IsZero() {
				end := e.PublishedAt.AddDate(m.Term.Years, m.Term.Months, m.Term.Days).Add(l.SuspensionExtension(e))
				if !q.At.Before(end) {
					continue
				}
				until = &end
			} else if termOnly {
				continue
			}
			if termOnly && (len(d.Findings) == 0 || d.Findings[len(d.Findings)-1].Entry != e) {
				d.Findings = append(d.Findings, Finding{Entry: e, Status: status, Via: via, Disclosed: l.Disclosed()})
			}
			am := AppliedMeasure{Measure: m, EntryID: e.ID, Status: MeasureApplied, Via: via, Until: until}
			if why := c.outOfScope(m, q.Context); why != "" {
				am.Status, am.Reason = MeasureNotApplicable, why
			} else if status == StatusUnderObjection {
				am.Status, am.Reason = MeasureSuspended, "the entry is under objection; measures are suspended while it is verified"
			}
			if d.Measures == nil {
				// Most decisions list a few measures: grow once, not at 1, 2, 4.
				d.Measures = make([]AppliedMeasure, 0, 4)
			}
			d.Measures = append(d.Measures, am)
			if am.Status != MeasureApplied {
				continue
			}
			if m.Effect != EffectIncentive && outranking == nil {
				outranking = m
			}
			if r := m.Effect.rank(); r > best {
				best = r
				d.Outcome = Outcome(m.Effect)
			}
		}
		if len(d.Measures) > first {
			// A measure rests on the entry: it is the measure's basis.
			d.Findings[len(d.Findings)-1].Disclosed = true
		}
	}
	if len(action.eligible) > 0 {
		c.decideEligibility(&d, q, entries, action.eligible, &best)
	}
	if black == nil && outranking == nil {
		return d, nil
	}
	// Incentives are withheld while a black-list entry is in force (the
	// opinion: "激励的对象就是列入红名单的企业和法人,惩戒对象就是'黑名单'",
	// 篇一; the green channel is for 诚信典型和连续三年无不良信用记录的
	// 行政相对人, 篇三 二(一)), and outranked by any punitive measure. An
	// entry under objection still withholds them: verification suspends
	// its 惩戒措施 (篇三(十六)), it does not make the subject's record
	// clean, which only an upheld objection does.
	withheld := false
	reason := ""
	for i := range d.Measures {
		am := &d.Measures[i]
		if am.Measure.Effect != EffectIncentive || am.Status != MeasureApplied {
			continue
		}
		if reason == "" {
			named := ""
			switch {
			case black == nil:
			case blackList.Disclosed():
				named = "black-list entry " + black.ID + " (" + blackList.Name + ")"
			default:
				// Its record stays with the recording department: the
				// reason does not name it.
				named = "a black-list entry kept by its recording department"
			}
			switch {
			case black != nil && black.StatusAt(q.At) == StatusUnderObjection:
				reason = "incentives are withheld while " + named +
					" stands: it is under objection, which suspends its measures but does not withdraw it"
			case black != nil:
				reason = "incentives are withheld while " + named + " is in force"
			default:
				reason = "outranked by the " + string(outranking.Effect) + " measure " + outranking.ID
			}
		}
		am.Status, am.Reason, withheld = MeasureOverridden, reason, true
	}
	if withheld && outranking == nil {
		// Only incentives had applied: the outcome falls back to clear.
		d.Outcome = OutcomeClear
	}
	return d, nil
}

// outOfScope returns why m does not bind a caller in ctx, or "" when it
// does. National, unconditional measures cost one flag test; the names in
// the reasons are prepared at load.
func (c *Catalog) outOfScope(m *Measure, ctx CheckContext) string {
	if !m.scoped {
		return ""
	}
	s := &m.Scope
	if len(s.Regions) > 0 && !slices.ContainsFunc(s.Regions, func(r string) bool {
		return ctx.Region != "" && RegionWithin(ctx.Region, r)
	}) {
		if ctx.Region == "" {
			return "applies only in " + m.scopeNames[0] + "; the caller has no region (national measures only)"
		}
		return "applies only in " + m.scopeNames[0] + "; the caller's region is " + ctx.Region
	}
	for i, v := range [...]struct {
		what   string
		ids    []string
		stated string
	}{
		{"industry", s.Industries, ctx.Industry},
		{"subject type", s.SubjectTypes, ctx.SubjectType},
		{"employer type", s.EmployerTypes, ctx.EmployerType},
	} {
		if len(v.ids) == 0 || slices.Contains(v.ids, v.stated) {
			continue
		}
		if v.stated == "" {
			return "applies only to " + v.what + " " + m.scopeNames[i+1] + "; the check states no " + v.what
		}
		return "applies only to " + v.what + " " + m.scopeNames[i+1] + "; the check states " + v.stated
	}
	return ""
}

// scopeNames names a scope's regions and terms for the reasons of
// outOfScope: "370100 济南市, 370200 青岛市", "coal_mining 煤矿".
func (c *Catalog) scopeNames(s Scope) [4]string {
	var out [4]string
	for i, v := range [...]struct {
		ids   []string
		names func(string) string
	}{
		{s.Regions, func(id string) string {
			if r := c.regionByCode[id]; r != nil {
				return r.Name
			}
			return ""
		}},
		{s.Industries, func(id string) string { return termName(c.industryByID, id) }},
		{s.SubjectTypes, func(id string) string { return termName(c.subjectTypeByID, id) }},
		{s.EmployerTypes, func(id string) string { return termName(c.employerTypeByID, id) }},
	} {
		parts := make([]string, len(v.ids))
		for j, id := range v.ids {
			parts[j] = strings.TrimSpace(id + " " + v.names(id))
		}
		out[i] = strings.Join(parts, ", ")
	}
	return out
}

func termName(idx map[string]*Term, id string) string {
	if t := idx[id]; t != nil {
		return t.Name
	}
	return ""
}

// decideEligibility adds the action's eligibility measures that no entry
// of the subject already brought: applied when the subject has had no
// dishonesty-list entry in force and no violation recorded within the
// condition's years before q.At, else not applicable with the reason.
func (c *Catalog) decideEligibility(d *Decision, q Query, entries []Entry, eligible []*Measure, best *int) {
	for _, m := range eligible {
		if !slices.Contains(m.AppliesTo, q.Subject.Kind) {
			continue
		}
		if slices.ContainsFunc(d.Measures, func(am AppliedMeasure) bool { return am.Measure == m }) {
			continue // the subject's red entry brought it
		}
		am := AppliedMeasure{Measure: m, Status: MeasureApplied, Basis: BasisEligibility}
		since := q.At.AddDate(-m.Eligibility.CleanRecordYears, 0, 0)
		if why := c.outOfScope(m, q.Context); why != "" {
			am.Status, am.Reason = MeasureNotApplicable, why
		} else if q.ViolationsUnknown {
			am.Status, am.Reason = MeasureNotApplicable, "eligibility ("+m.Eligibility.Source+") cannot be established: the violation records could not be read"
		} else if why := c.recordSince(q, entries, since); why != "" {
			am.Status, am.Reason = MeasureNotApplicable, "not eligible ("+m.Eligibility.Source+"): "+why
		} else {
			am.Reason = "no dishonesty-list entry in force and no violation recorded since " + since.UTC().Format(time.DateOnly) +
				" (" + m.Eligibility.Source + ")"
		}
		d.Measures = append(d.Measures, am)
		if am.Status == MeasureApplied {
			if r := m.Effect.rank(); r > *best {
				*best = r
				d.Outcome = Outcome(m.Effect)
			}
		}
	}
}

// recordSince says which bad credit record the subject has within
// [since, q.At]: a dishonesty-list entry (any kind but red) reaching it
// that was in force at some time in the window, or a violation decided in
// it; "" when there is none. A revoked entry counts until its revocation
// (a court's removal or a department's decision ends a listing, it does
// not unmake it), unless it was voided by an upheld objection.
func (c *Catalog) recordSince(q Query, entries []Entry, since time.Time) string {
	kept := false // a record on a list kept by its recording department
	for i := range entries {
		e := &entries[i]
		l, ok := c.listByID[e.List]
		if !ok || l.Kind == ListRed || e.Voided() || q.At.Before(e.PublishedAt) {
			continue
		}
		if e.Subject != q.Subject && reach(l, e, q.Subject) == nil {
			continue
		}
		end := e.inForceUntil()
		if e.RevokedAt != nil && (end == nil || e.RevokedAt.Before(*end)) {
			end = e.RevokedAt
		}
		if end != nil && (!end.After(since) || !end.After(e.PublishedAt)) {
			continue // out of force before the window, or never in force
		}
		if !l.Disclosed() {
			kept = true // named only when no other record is found
			continue
		}
		return fmt.Sprintf("entry %s (%s) was in force after %s", e.ID, l.Name, since.UTC().Format(time.DateOnly))
	}
	if kept {
		// The reason is in every caller's answer; the entry is not (Finding.Disclosed).
		return "a record kept by its recording department was in force after " + since.UTC().Format(time.DateOnly)
	}
	for _, v := range q.Violations {
		if !v.Before(since) && !v.After(q.At) {
			return "a violation was recorded on " + v.UTC().Format(time.DateOnly)
		}
	}
	return ""
}

// inForceUntil is when the entry stopped being in force (repair, expiry
// or approved exit), nil while it has not.
func (e *Entry) inForceUntil() *time.Time {
	end := e.repairedAt()
	var expiry *time.Time
	switch {
	case e.ValidUntil == nil:
	case !e.ExitByApplication:
		expiry = e.ValidUntil
	default:
		expiry = e.exitAt()
	}
	if end == nil || (expiry != nil && expiry.Before(*end)) {
		end = expiry
	}
	return end
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
	if via == nil && k == KindPerson && m.PersonsThroughOrganization {
		// Only as an organisation's responsible person (篇三 三(七)).
		return false
	}
	if via == nil || len(m.Roles) == 0 {
		return true
	}
	return slices.Contains(m.Roles, via.Role)
}
