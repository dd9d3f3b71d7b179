package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Points-derived lists (积分管理): violation records (不良信用记录) are
// recorded against catalogue items; a rule set turns a subject's records
// into points and points into list membership. Rule sets are catalogue
// data: urban management (篇十三/十四 第六条) scores in calendar-year cycles
// of 12 points, Nanning (篇四 第七-九条) over a rolling year.

// Severity is a class of act in a rule set, with its points.
type Severity struct {
	ID     string `yaml:"id" json:"id"`
	Name   string `yaml:"name" json:"name"`
	Points int    `yaml:"points,omitempty" json:"points,omitempty"`
}

// PointsCycle says over which period points add up: calendar years (with
// points below ClearBelow cleared at the end of a year and the rest carried
// over) or a rolling window ending at the time of the computation.
type PointsCycle struct {
	CalendarYear bool     `yaml:"calendar_year,omitempty" json:"calendar_year,omitempty"`
	ClearBelow   int      `yaml:"clear_below,omitempty" json:"clear_below,omitempty"`
	Window       Validity `yaml:"window,omitempty" json:"window,omitzero"`
	Source       string   `yaml:"source" json:"source"`
}

// SameItemRule: the same item punished Times times in a cycle counts
// Points (篇十三 第六条(二): 同一项目…被行政处罚满3次的,扣除12分).
type SameItemRule struct {
	Times      int      `yaml:"times" json:"times"`
	Points     int      `yaml:"points" json:"points"`
	Severities []string `yaml:"severities" json:"severities"`
	Source     string   `yaml:"source" json:"source"`
}

// Level is a threshold: Points or more put the subject on List.
type Level struct {
	Points int    `yaml:"points" json:"points"`
	List   string `yaml:"list" json:"list"`
}

// RuleSet is a declared points scheme. A rule set without levels only
// classifies acts (for escalation rules).
type RuleSet struct {
	ID         string        `yaml:"id" json:"id"`
	Name       string        `yaml:"name" json:"name"`
	LegalBasis string        `yaml:"legal_basis" json:"legal_basis"`
	Severities []Severity    `yaml:"severities" json:"severities"`
	Cycle      *PointsCycle  `yaml:"cycle,omitempty" json:"cycle,omitempty"`
	Cap        int           `yaml:"cap,omitempty" json:"cap,omitempty"`
	SameItem   *SameItemRule `yaml:"same_item,omitempty" json:"same_item,omitempty"`
	// Levels in ascending points; each names the list it leads to.
	Levels []Level `yaml:"levels,omitempty" json:"levels,omitempty"`
	Source string  `yaml:"source" json:"source"`
}

// ViolationItem is an item of a rule set's catalogue of dishonest acts
// (失信行为目录).
type ViolationItem struct {
	ID       string `yaml:"id" json:"id"`
	RuleSet  string `yaml:"rule_set" json:"rule_set"`
	Severity string `yaml:"severity" json:"severity"`
	Text     string `yaml:"text" json:"text"`
	Source   string `yaml:"source" json:"source"`
}

// ViolationRecord is one 不良信用记录: an act of a subject, punished by a
// department, against a catalogue item. DecidedAt is when the penalty was
// decided (the valid time); RecordedAt is when credgate learnt of it (the
// record time). Records are never changed once stored.
type ViolationRecord struct {
	ID                  string    `json:"id"`
	Subject             SubjectID `json:"-"`
	RuleSet             string    `json:"rule_set"`
	Item                string    `json:"item"`
	Severity            string    `json:"severity"`
	DecidedAt           time.Time `json:"decided_at"`
	RecordedAt          time.Time `json:"recorded_at"`
	Department          string    `json:"department"`
	Reference           string    `json:"reference"`
	EvidenceRefs        []string  `json:"evidence_refs,omitempty"`
	ParticularlySerious bool      `json:"particularly_serious,omitempty"`
}

// Sentinel errors of violation records.
var (
	ErrInvalidViolation     = errors.New("invalid violation record")
	ErrUnknownViolationItem = errors.New("unknown violation item")
	ErrUnknownRuleSet       = errors.New("unknown rule set")
)

// PrepareViolation validates r against the catalogue and fills in what the
// item determines (rule set, severity).
func (c *Catalog) PrepareViolation(r ViolationRecord) (ViolationRecord, error) {
	it, ok := c.itemByID[r.Item]
	if !ok {
		return ViolationRecord{}, fmt.Errorf("%w: %w %q", ErrInvalidViolation, ErrUnknownViolationItem, r.Item)
	}
	if r.Subject.IsZero() {
		return ViolationRecord{}, fmt.Errorf("%w: subject is required", ErrInvalidViolation)
	}
	r.RuleSet, r.Severity = it.RuleSet, it.Severity
	r.Department, r.Reference = strings.TrimSpace(r.Department), strings.TrimSpace(r.Reference)
	for name, v := range map[string]string{"department": r.Department, "reference": r.Reference} {
		if v == "" {
			return ViolationRecord{}, fmt.Errorf("%w: %s is required", ErrInvalidViolation, name)
		}
		if len(v) > MaxTextLen {
			return ViolationRecord{}, fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalidViolation, name, MaxTextLen)
		}
		if p := TextProblem(v); p != "" {
			return ViolationRecord{}, fmt.Errorf("%w: %s %s", ErrInvalidViolation, name, p)
		}
	}
	if len(r.EvidenceRefs) > MaxEvidenceRefs {
		return ViolationRecord{}, fmt.Errorf("%w: more than %d evidence_refs", ErrInvalidViolation, MaxEvidenceRefs)
	}
	for i, ref := range r.EvidenceRefs {
		if strings.TrimSpace(ref) == "" || len(ref) > MaxTextLen {
			return ViolationRecord{}, fmt.Errorf("%w: an evidence reference is empty or longer than %d bytes", ErrInvalidViolation, MaxTextLen)
		}
		if p := TextProblem(ref); p != "" {
			return ViolationRecord{}, fmt.Errorf("%w: evidence_refs[%d] %s", ErrInvalidViolation, i, p)
		}
	}
	if r.DecidedAt.IsZero() {
		return ViolationRecord{}, fmt.Errorf("%w: decided_at is required", ErrInvalidViolation)
	}
	if r.DecidedAt.After(r.RecordedAt) {
		return ViolationRecord{}, fmt.Errorf("%w: decided_at is after the time it is recorded", ErrInvalidViolation)
	}
	if r.Subject.Kind == KindPerson && c.ruleSetNeedsFullCapacity(r.RuleSet) && !c.adultAt(r.Subject, r.DecidedAt) {
		// A rule set whose lists hold only persons of full capacity does
		// not score minors at all (篇四 第二条 defines the 办法's 个人), so the
		// record is refused at once rather than when its points reach a
		// list.
		return ViolationRecord{}, fmt.Errorf("%w: %w: rule set %s; the person is under 18 at the decision date", ErrInvalidViolation, ErrFullCapacityRequired, r.RuleSet)
	}
	r.DecidedAt, r.RecordedAt = r.DecidedAt.UTC(), r.RecordedAt.UTC()
	r.EvidenceRefs = slices.Clone(r.EvidenceRefs)
	return r, nil
}

// ruleSetNeedsFullCapacity reports whether a list a rule set leads to
// requires full civil capacity.
func (c *Catalog) ruleSetNeedsFullCapacity(id string) bool {
	rs, ok := c.ruleSetByID[id]
	if !ok {
		return false
	}
	for _, lv := range rs.Levels {
		if l, ok := c.listByID[lv.List]; ok && l.RequiresFullCapacity {
			return true
		}
	}
	return false
}

// Standing is a subject's points in a rule set at a time, with the trail
// of how they were counted.
type Standing struct {
	RuleSet string    `json:"rule_set"`
	At      time.Time `json:"at"`
	Points  int       `json:"points"`
	// Level is the list the points lead to, "" below the first threshold.
	Level string `json:"level,omitempty"`
	// Rule is the level's rule path (e.g. "urban_management.levels[2]").
	Rule    string   `json:"rule,omitempty"`
	Records []string `json:"records"`
	Trail   []string `json:"trail"`
}

// Standing computes the subject's points in rule set rs at `at` from its
// records (records of other sets and records decided after `at` are
// ignored).
func (c *Catalog) Standing(rs string, records []ViolationRecord, at time.Time) (Standing, error) {
	set, ok := c.ruleSetByID[rs]
	if !ok {
		return Standing{}, fmt.Errorf("%w %q", ErrUnknownRuleSet, rs)
	}
	var mine []ViolationRecord
	for _, r := range records {
		if r.RuleSet == rs && !r.DecidedAt.After(at) {
			mine = append(mine, r)
		}
	}
	slices.SortFunc(mine, func(a, b ViolationRecord) int {
		if d := a.DecidedAt.Compare(b.DecidedAt); d != 0 {
			return d
		}
		return strings.Compare(a.ID, b.ID)
	})
	st := Standing{RuleSet: rs, At: at, Records: []string{}, Trail: []string{}}
	if set.Cycle == nil {
		return st, nil
	}
	loc := c.calendar.Location()
	switch {
	case set.Cycle.CalendarYear:
		year := at.In(loc).Year()
		carry, carried := 0, []string(nil)
		for y := yearOf(mine, loc, year); y <= year; y++ {
			var inYear []ViolationRecord
			for _, r := range mine {
				if r.DecidedAt.In(loc).Year() == y {
					inYear = append(inYear, r)
				}
			}
			pts, ids, trail := set.score(inYear, carry, fmt.Sprintf("cycle %d", y))
			ids = append(slices.Clone(carried), ids...)
			if carry > 0 {
				trail = append([]string{fmt.Sprintf("cycle %d: %d points carried over from %d", y, carry, y-1)}, trail...)
			}
			if y == year {
				st.Points, st.Records = pts, ids
				st.Trail = append(st.Trail, trail...)
				break
			}
			st.Trail = append(st.Trail, trail...)
			if pts < set.Cycle.ClearBelow {
				if pts > 0 {
					st.Trail = append(st.Trail, fmt.Sprintf("cycle %d ended with %d points, below %d: cleared (%s)", y, pts, set.Cycle.ClearBelow, set.Cycle.Source))
				}
				carry, carried = 0, nil
			} else {
				carry, carried = pts, ids
			}
		}
	default:
		w := set.Cycle.Window
		from := at.AddDate(-w.Years, -w.Months, -w.Days)
		var in []ViolationRecord
		for _, r := range mine {
			if r.DecidedAt.After(from) {
				in = append(in, r)
			}
		}
		st.Points, st.Records, st.Trail = set.score(in, 0, fmt.Sprintf("window %s–%s", from.UTC().Format(time.DateOnly), at.UTC().Format(time.DateOnly)))
	}
	for i := len(set.Levels) - 1; i >= 0; i-- {
		if st.Points >= set.Levels[i].Points {
			st.Level = set.Levels[i].List
			st.Rule = fmt.Sprintf("%s.levels[%d]", rs, i)
			st.Trail = append(st.Trail, fmt.Sprintf("%d points ≥ %d: %s (%s)", st.Points, set.Levels[i].Points, st.Level, set.Source))
			break
		}
	}
	return st, nil
}

// yearOf is the first cycle to count: the year of the earliest record, or
// the current one when there is none.
func yearOf(records []ViolationRecord, loc *time.Location, current int) int {
	if len(records) == 0 {
		return current
	}
	return min(records[0].DecidedAt.In(loc).Year(), current)
}

// score adds up records (sorted) on top of start points, applying the
// same-item rule and the cap.
func (set *RuleSet) score(records []ViolationRecord, start int, label string) (int, []string, []string) {
	pts := start
	ids := make([]string, 0, len(records))
	var trail []string
	counts := map[string]int{}
	for _, r := range records {
		p := 0
		for _, s := range set.Severities {
			if s.ID == r.Severity {
				p = s.Points
			}
		}
		pts += p
		ids = append(ids, r.ID)
		trail = append(trail, fmt.Sprintf("%s: %s %s item %s (%s) +%d → %d", label, r.DecidedAt.UTC().Format(time.DateOnly), r.ID, r.Item, r.Severity, p, pts))
		if si := set.SameItem; si != nil && slices.Contains(si.Severities, r.Severity) {
			counts[r.Item]++
			if counts[r.Item] == si.Times && pts < si.Points {
				pts = si.Points
				trail = append(trail, fmt.Sprintf("%s: item %s punished %d times → %d points (%s)", label, r.Item, si.Times, si.Points, si.Source))
			}
		}
		if set.Cap > 0 && pts > set.Cap {
			pts = set.Cap
			trail = append(trail, fmt.Sprintf("%s: capped at %d", label, set.Cap))
		}
	}
	return pts, ids, trail
}

// kindRank orders list kinds by severity, for choosing the strongest of
// several derivations and for "already on an equal or higher list".
func kindRank(k ListKind) int {
	switch k {
	case ListBlack:
		return 4
	case ListKeyAttention:
		return 3
	case ListYellow:
		return 2
	case ListGeneral:
		return 1
	}
	return 0
}

// Derived is what a new violation record changes.
type Derived struct {
	Standing Standing
	// New is the derived entry, prepared (nil when nothing changes).
	New *Entry
	// Closed are the subject's entries the new one supersedes or removes.
	Closed []EntryChange
}

// Derive computes the consequences of the new record rec at `at`:
// records are the subject's records including rec, entries its entries.
// The strongest of the points level and the escalation rules of the
// subject's entries in force wins; nothing is derived when the subject is
// already on that list or a stronger one of the same family. id is the
// new entry's id.
func (c *Catalog) Derive(rec ViolationRecord, records []ViolationRecord, entries []Entry, id string, at time.Time) (Derived, error) {
	st, err := c.Standing(rec.RuleSet, records, at)
	if err != nil {
		return Derived{}, err
	}
	out := Derived{Standing: st}
	set := c.ruleSetByID[rec.RuleSet]
	family := map[string]bool{}
	for _, lv := range set.Levels {
		family[lv.List] = true
	}

	type candidate struct {
		list string
		from *Entry
		der  Derivation
	}
	var best *candidate
	consider := func(cd candidate) {
		if best == nil || kindRank(c.listByID[cd.list].Kind) > kindRank(c.listByID[best.list].Kind) {
			best = &cd
		}
	}
	if st.Level != "" {
		consider(candidate{list: st.Level, der: Derivation{Rule: st.Rule, Source: set.Source, RuleSet: set.ID,
			Points: st.Points, Records: st.Records, Trail: st.Trail, ComputedAt: at}})
	}
	for i := range entries {
		o := &entries[i]
		if o.Subject != rec.Subject || !o.InForceAt(at) || rec.DecidedAt.Before(o.PublishedAt) {
			continue
		}
		ol, ok := c.listByID[o.List]
		if !ok || ol.Escalate == nil || ol.Escalate.RuleSet != rec.RuleSet || !slices.Contains(ol.Escalate.OnNewAct, rec.Severity) {
			continue
		}
		family[o.List], family[ol.Escalate.To] = true, true
		consider(candidate{list: ol.Escalate.To, from: o, der: Derivation{
			Rule: o.List + ".escalate", Source: ol.Escalate.Source, RuleSet: rec.RuleSet, Points: st.Points,
			Records: []string{rec.ID}, FromEntry: o.ID, ComputedAt: at,
			Trail: []string{fmt.Sprintf("entry %s on %s in force since %s; new %s act %s (item %s) decided %s → %s (%s)",
				o.ID, o.List, o.PublishedAt.UTC().Format(time.DateOnly), rec.Severity, rec.ID, rec.Item,
				rec.DecidedAt.UTC().Format(time.DateOnly), ol.Escalate.To, ol.Escalate.Source)},
		}})
	}
	if best == nil {
		return out, nil
	}
	target := c.listByID[best.list]
	for i := range entries {
		o := &entries[i]
		if o.Subject == rec.Subject && o.InForceAt(at) && family[o.List] && kindRank(c.listByID[o.List].Kind) >= kindRank(target.Kind) {
			return out, nil // already there, or higher
		}
	}
	if !slices.Contains(target.SubjectKinds, rec.Subject.Kind) {
		return out, nil
	}
	n := Entry{
		ID: id, Subject: rec.Subject, List: target.ID, OriginatingDepartment: rec.Department,
		LegalBasis: set.LegalBasis, EvidenceRefs: []string{"violation_record:" + rec.ID},
		DecidedAt: at, PublishedAt: at, ParticularlySerious: rec.ParticularlySerious,
		Derivation: &best.der, CreatedAt: at, UpdatedAt: at, Version: 1,
	}
	if best.from != nil {
		n.OriginatingDepartment = best.from.OriginatingDepartment
		n.LegalBasis = best.der.Source
		n.Reason = fmt.Sprintf("%s主体有效期内发生新的失信行为(记录 %s),转入%s", c.listByID[best.from.List].Name, rec.ID, target.Name)
		for _, p := range best.from.ResponsiblePersons {
			if slices.Contains(target.Reaches, p.Role) {
				n.ResponsiblePersons = append(n.ResponsiblePersons, p)
			}
		}
	} else {
		n.Reason = fmt.Sprintf("%s累计%d分,列入%s", set.Name, st.Points, target.Name)
	}
	n, err = c.PrepareEntry(n)
	if err != nil {
		return Derived{}, fmt.Errorf("derive entry: %w", err)
	}
	out.New = &n
	for i := range entries {
		o := entries[i]
		if o.Subject != rec.Subject || !o.InForceAt(at) || !family[o.List] || kindRank(c.listByID[o.List].Kind) >= kindRank(target.Kind) {
			continue
		}
		cause := Cause{Rule: best.der.Rule, Source: best.der.Source, EntryID: n.ID}
		out.Closed = append(out.Closed, EntryChange{
			Entry: Close(o, cause, fmt.Sprintf("superseded by %s (entry %s), rule %s", n.List, n.ID, best.der.Rule), at), Cause: cause,
		})
	}
	more, err := c.OnEnter(n, entries)
	if err != nil {
		return Derived{}, err
	}
	for _, m := range more {
		if !slices.ContainsFunc(out.Closed, func(x EntryChange) bool { return x.Entry.ID == m.Entry.ID }) {
			out.Closed = append(out.Closed, m)
		}
	}
	return out, nil
}

// String writes a validity as "1y2m3d" parts, "indefinite" when zero.
func (v Validity) String() string {
	if v.IsZero() {
		return "indefinite"
	}
	var parts []string
	if v.Years != 0 {
		parts = append(parts, fmt.Sprintf("%d year(s)", v.Years))
	}
	if v.Months != 0 {
		parts = append(parts, fmt.Sprintf("%d month(s)", v.Months))
	}
	if v.Days != 0 {
		parts = append(parts, fmt.Sprintf("%d day(s)", v.Days))
	}
	return strings.Join(parts, " ")
}

// validateRuleSet checks a rule set (lists are loaded by then).
func (c *Catalog) validateRuleSet(rs *RuleSet) error {
	if rs.ID == "" || rs.Name == "" || rs.Source == "" || rs.LegalBasis == "" {
		return errors.New("id, name, legal_basis and source are required")
	}
	if len(rs.Severities) == 0 {
		return errors.New("severities is required")
	}
	seen := map[string]bool{}
	for _, s := range rs.Severities {
		if s.ID == "" || s.Name == "" || seen[s.ID] {
			return fmt.Errorf("severity %q: id and name are required and distinct", s.ID)
		}
		if s.Points < 0 {
			return fmt.Errorf("severity %q: points must not be negative", s.ID)
		}
		seen[s.ID] = true
	}
	if rs.Cap < 0 {
		return errors.New("cap must not be negative")
	}
	if cy := rs.Cycle; cy != nil {
		if cy.CalendarYear == !cy.Window.IsZero() {
			return errors.New("cycle: exactly one of calendar_year and window")
		}
		if cy.Window.Years < 0 || cy.Window.Months < 0 || cy.Window.Days < 0 || cy.ClearBelow < 0 {
			return errors.New("cycle: window and clear_below must not be negative")
		}
		if cy.ClearBelow > 0 && !cy.CalendarYear {
			return errors.New("cycle: clear_below applies to calendar_year cycles only")
		}
		if cy.Source == "" {
			return errors.New("cycle: source is required")
		}
	}
	if si := rs.SameItem; si != nil {
		if si.Times < 2 || si.Points < 1 || si.Source == "" || len(si.Severities) == 0 {
			return errors.New("same_item: times ≥ 2, points ≥ 1, severities and source are required")
		}
		for _, s := range si.Severities {
			if !seen[s] {
				return fmt.Errorf("same_item: unknown severity %q", s)
			}
		}
	}
	if len(rs.Levels) > 0 && rs.Cycle == nil {
		return errors.New("levels need a cycle")
	}
	prev := 0
	for i, lv := range rs.Levels {
		l, ok := c.listByID[lv.List]
		if !ok {
			return fmt.Errorf("levels[%d]: %w %q", i, ErrUnknownList, lv.List)
		}
		if l.Kind == ListRed {
			return fmt.Errorf("levels[%d]: %s is a red list", i, lv.List)
		}
		if lv.Points <= prev {
			return fmt.Errorf("levels[%d]: points must be positive and ascending", i)
		}
		if i > 0 && kindRank(l.Kind) <= kindRank(c.listByID[rs.Levels[i-1].List].Kind) {
			return fmt.Errorf("levels[%d]: %s (%s) is not stronger than the level below", i, lv.List, l.Kind)
		}
		if rs.Cap > 0 && lv.Points > rs.Cap {
			return fmt.Errorf("levels[%d]: %d points is above the cap %d", i, lv.Points, rs.Cap)
		}
		prev = lv.Points
	}
	return nil
}

func (c *Catalog) validateItem(it ViolationItem) error {
	if it.ID == "" || strings.TrimSpace(it.Text) == "" || it.Source == "" {
		return errors.New("id, text and source are required")
	}
	rs, ok := c.ruleSetByID[it.RuleSet]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownRuleSet, it.RuleSet)
	}
	if !slices.ContainsFunc(rs.Severities, func(s Severity) bool { return s.ID == it.Severity }) {
		return fmt.Errorf("rule set %s has no severity %q", rs.ID, it.Severity)
	}
	return nil
}
