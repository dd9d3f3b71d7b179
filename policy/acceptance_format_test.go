package policy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/goccy/go-yaml"
)

// Every acceptance case (acceptanceCase, acceptance_test.go) is well formed
// and names only lists, actions,
// vocabulary and measures the bundled catalogue has, so that a renamed
// measure cannot silently empty a case.
func TestAcceptanceFilesWellFormed(t *testing.T) {
	c := loadBundled(t)
	measures := map[string]bool{}
	for _, m := range c.Measures() {
		measures[m.ID] = true
	}
	files, _ := filepath.Glob("testdata/acceptance/*.yaml")
	if len(files) == 0 {
		t.Fatal("no acceptance cases")
	}
	names := map[string]string{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var cases []acceptanceCase
		if err := yaml.UnmarshalWithOptions(data, &cases, yaml.DisallowUnknownField()); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, tc := range cases {
			where := file + ": " + tc.Name
			if tc.Name == "" || tc.Source == "" || tc.Action == "" {
				t.Errorf("%s: name, source and action are required", where)
			}
			if prev, dup := names[tc.Name]; dup {
				t.Errorf("%s: name also used in %s", where, prev)
			}
			names[tc.Name] = file
			if tc.Subject != KindOrganization && tc.Subject != KindPerson {
				t.Errorf("%s: subject %q", where, tc.Subject)
			}
			if _, ok := c.Action(tc.Action); !ok {
				t.Errorf("%s: unknown action %q", where, tc.Action)
			}
			for _, l := range append([]string{tc.List}, tc.AlsoLists...) {
				if _, ok := c.List(l); l != "" && !ok {
					t.Errorf("%s: unknown list %q", where, l)
				}
			}
			if tc.Region != "" && ValidRegion(tc.Region) != nil {
				t.Errorf("%s: region %q", where, tc.Region)
			}
			if tc.Industry != "" && !c.Industry(tc.Industry) || tc.SubjectType != "" && !c.SubjectType(tc.SubjectType) || tc.EmployerType != "" && !c.EmployerType(tc.EmployerType) {
				t.Errorf("%s: undeclared industry, subject type or employer type", where)
			}
			ids := append(append([]string{}, tc.Applied...), tc.NotApplied...)
			for id, st := range tc.Status {
				ids = append(ids, id)
				switch st {
				case MeasureApplied, MeasureSuspended, MeasureOverridden, "not_applicable":
				default:
					t.Errorf("%s: status %q", where, st)
				}
			}
			for _, id := range ids {
				if !measures[id] {
					t.Errorf("%s: unknown measure %q", where, id)
				}
			}
		}
	}
}
