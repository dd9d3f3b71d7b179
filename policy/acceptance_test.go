package policy

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

// The acceptance cases (testdata/acceptance/*.yaml) are expectations
// written from the source texts, not from the code: list × action ×
// subject kind × the caller's context, each naming the passage it comes
// from. The runner builds the entries a case describes and checks the
// bundled catalogue's decision against it.

// acceptanceCase is one case; unknown fields are refused so that a
// misspelt expectation cannot pass silently.
type acceptanceCase struct {
	Name               string                   `yaml:"name"`
	Source             string                   `yaml:"source"`
	List               string                   `yaml:"list"`
	Subject            SubjectKind              `yaml:"subject"`
	AlsoLists          []string                 `yaml:"also_lists"`
	Action             string                   `yaml:"action"`
	Region             string                   `yaml:"region"`
	Industry           string                   `yaml:"industry"`
	SubjectType        string                   `yaml:"subject_type"`
	EmployerType       string                   `yaml:"employer_type"`
	ViolationsYearsAgo []float64                `yaml:"violations_years_ago"`
	WantOutcome        Outcome                  `yaml:"want_outcome"`
	NotOutcome         []Outcome                `yaml:"not_outcome"`
	Applied            []string                 `yaml:"applied"`
	NotApplied         []string                 `yaml:"not_applied"`
	Status             map[string]MeasureStatus `yaml:"status"`
}

// The subjects of the cases (valid check characters) and the time of
// every check.
var (
	acceptanceOrg    = SubjectID{Kind: KindOrganization, Value: "91350100M000100Y43"}
	acceptancePerson = SubjectID{Kind: KindPerson, Value: "11010519491231002X"}
	acceptanceAt     = time.Date(2026, 6, 1, 2, 0, 0, 0, time.UTC)
)

func TestAcceptance(t *testing.T) {
	c, err := BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "acceptance", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no acceptance cases in testdata/acceptance")
	}
	for _, f := range files {
		cases, err := loadAcceptance(f)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		for i, tc := range cases {
			t.Run(filepath.Base(f)+"/"+tc.Name, func(t *testing.T) {
				for _, msg := range runAcceptanceCase(c, tc) {
					t.Errorf("%s case %d (%s): %s", filepath.Base(f), i+1, tc.Source, msg)
				}
			})
		}
	}
}

func loadAcceptance(path string) ([]acceptanceCase, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cases []acceptanceCase
	if err := yaml.UnmarshalWithOptions(data, &cases, yaml.DisallowUnknownField()); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	seen := map[string]bool{}
	for i, tc := range cases {
		if tc.Name == "" || tc.Source == "" {
			return nil, fmt.Errorf("%s: case %d: name and source are required", path, i+1)
		}
		if seen[tc.Name] {
			return nil, fmt.Errorf("%s: case %q appears twice", path, tc.Name)
		}
		seen[tc.Name] = true
	}
	return cases, nil
}

// runAcceptanceCase decides one case and returns what does not hold
// (nothing when the case passes). A case that cannot be run — an unknown
// list, action or measure, an entry its list refuses — is a failure too.
func runAcceptanceCase(c *Catalog, tc acceptanceCase) []string {
	var subject SubjectID
	switch tc.Subject {
	case KindOrganization:
		subject = acceptanceOrg
	case KindPerson:
		subject = acceptancePerson
	default:
		return []string{fmt.Sprintf("subject must be organization or person, not %q", tc.Subject)}
	}
	var bad []string
	for _, o := range append([]Outcome{tc.WantOutcome}, tc.NotOutcome...) {
		if o != "" && !validOutcome(o) {
			bad = append(bad, fmt.Sprintf("unknown outcome %q", o))
		}
	}
	for _, id := range slices.Concat(tc.Applied, tc.NotApplied, mapKeys(tc.Status)) {
		if !slices.ContainsFunc(c.measures, func(m Measure) bool { return m.ID == id }) {
			bad = append(bad, fmt.Sprintf("measure %q is not in the catalogue", id))
		}
	}
	for id, st := range tc.Status {
		switch st {
		case MeasureApplied, MeasureSuspended, MeasureOverridden, MeasureNotApplicable:
		default:
			bad = append(bad, fmt.Sprintf("status of %s: unknown status %q", id, st))
		}
	}
	ctx := CheckContext{Region: tc.Region, Industry: tc.Industry, SubjectType: tc.SubjectType, EmployerType: tc.EmployerType}
	if err := c.ValidateContext(ctx); err != nil {
		bad = append(bad, "context: "+err.Error())
	}
	var entries []Entry
	lists := tc.AlsoLists
	if tc.List != "" {
		lists = append([]string{tc.List}, lists...)
	}
	for i, l := range lists {
		e, err := c.PrepareEntry(Entry{
			ID: fmt.Sprintf("acc-%d-%s", i+1, l), Subject: subject, List: l,
			OriginatingDepartment: "acceptance", Reason: tc.Name, LegalBasis: tc.Source,
			DecidedAt: acceptanceAt.AddDate(0, 0, -31), PublishedAt: acceptanceAt.AddDate(0, 0, -30),
		})
		if err != nil {
			bad = append(bad, fmt.Sprintf("entry on %s: %v", l, err))
			continue
		}
		entries = append(entries, e)
	}
	q := Query{Subject: subject, Action: tc.Action, At: acceptanceAt, Context: ctx}
	for _, y := range tc.ViolationsYearsAgo {
		q.Violations = append(q.Violations, acceptanceAt.Add(-time.Duration(y*365.25*24*float64(time.Hour))))
	}
	if len(bad) > 0 {
		return bad
	}
	d, err := Decide(c, q, entries)
	if err != nil {
		return []string{"decide: " + err.Error()}
	}
	got := func() string {
		var b strings.Builder
		fmt.Fprintf(&b, "outcome %s;", d.Outcome)
		for _, m := range d.Measures {
			fmt.Fprintf(&b, " %s=%s", m.Measure.ID, m.Status)
		}
		return b.String()
	}
	status := func(id string) MeasureStatus {
		for _, m := range d.Measures {
			if m.Measure.ID == id {
				return m.Status
			}
		}
		return ""
	}
	if tc.WantOutcome != "" && d.Outcome != tc.WantOutcome {
		bad = append(bad, fmt.Sprintf("outcome %s, want %s (%s)", d.Outcome, tc.WantOutcome, got()))
	}
	if slices.Contains(tc.NotOutcome, d.Outcome) {
		bad = append(bad, fmt.Sprintf("outcome %s, which the case rules out (%s)", d.Outcome, got()))
	}
	for _, id := range tc.Applied {
		if st := status(id); st != MeasureApplied {
			bad = append(bad, fmt.Sprintf("measure %s: %s, want applied (%s)", id, orAbsent(st), got()))
		}
	}
	for _, id := range tc.NotApplied {
		if status(id) == MeasureApplied {
			bad = append(bad, fmt.Sprintf("measure %s applied, want not applied (%s)", id, got()))
		}
	}
	for _, id := range mapKeys(tc.Status) {
		if st := status(id); st != tc.Status[id] {
			bad = append(bad, fmt.Sprintf("measure %s: %s, want %s (%s)", id, orAbsent(st), tc.Status[id], got()))
		}
	}
	return bad
}

func validOutcome(o Outcome) bool {
	switch o {
	case OutcomeProhibit, OutcomeRestrict, OutcomeStrictReview, OutcomeReference, OutcomeIncentive, OutcomeClear:
		return true
	}
	return false
}

func orAbsent(st MeasureStatus) string {
	if st == "" {
		return "absent"
	}
	return string(st)
}

func mapKeys(m map[string]MeasureStatus) []string { return slices.Sorted(maps.Keys(m)) }

// TestAcceptanceRunnerFails shows the runner can fail: each wrong
// expectation about the self-check's first case is reported, and cases
// that cannot be run are refused rather than passed.
func TestAcceptanceRunnerFails(t *testing.T) {
	c, err := BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	base := acceptanceCase{Name: "x", Source: "篇五 三(九)", List: "court_dishonest_debtor", Subject: KindOrganization,
		Action: "financial_institution_setup", WantOutcome: OutcomeRestrict, Applied: []string{"court-financial-institution"}}
	if msgs := runAcceptanceCase(c, base); len(msgs) > 0 {
		t.Fatalf("the base case fails: %v", msgs)
	}
	for name, mod := range map[string]func(*acceptanceCase){
		"wrong outcome":           func(tc *acceptanceCase) { tc.WantOutcome = OutcomeClear },
		"ruled-out outcome":       func(tc *acceptanceCase) { tc.NotOutcome = []Outcome{OutcomeRestrict} },
		"applied measure absent":  func(tc *acceptanceCase) { tc.Applied = []string{"sp-01-supervision"} },
		"not applied but applied": func(tc *acceptanceCase) { tc.NotApplied = []string{"court-financial-institution"} },
		"wrong status": func(tc *acceptanceCase) {
			tc.Status = map[string]MeasureStatus{"court-financial-institution": MeasureNotApplicable}
		},
		"unknown measure": func(tc *acceptanceCase) { tc.NotApplied = []string{"no-such-measure"} },
		"unknown list":    func(tc *acceptanceCase) { tc.List = "no_such_list" },
		"unknown action":  func(tc *acceptanceCase) { tc.Action = "no_such_action" },
		"bad subject":     func(tc *acceptanceCase) { tc.Subject = "company" },
		"bad region":      func(tc *acceptanceCase) { tc.Region = "4403" },
		"unknown outcome": func(tc *acceptanceCase) { tc.NotOutcome = []Outcome{"maybe"} },
		"unknown status":  func(tc *acceptanceCase) { tc.Status = map[string]MeasureStatus{"court-financial-institution": "on"} },
	} {
		tc := base
		mod(&tc)
		if msgs := runAcceptanceCase(c, tc); len(msgs) == 0 {
			t.Errorf("%s: not reported", name)
		}
	}
	dir := t.TempDir()
	for name, body := range map[string]string{
		"unknown field":  "- {name: a, source: b, subject: organization, action: honors, wnat_outcome: clear}\n",
		"missing source": "- {name: a, subject: organization, action: honors}\n",
		"duplicate name": "- {name: a, source: b, subject: organization, action: honors}\n- {name: a, source: c, subject: organization, action: honors}\n",
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := loadAcceptance(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
