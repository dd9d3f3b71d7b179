package policy

import (
	"strings"
	"testing"
	"testing/fstest"
)

// A general-level urban-management record is kept by the 城管部门 (篇十三
// 第七条(二)); yellow and black records are published ((四)(五)). The
// catalogue says so, and the decision marks which findings a partner may
// be shown: a kept entry only when a measure of the decision rests on it.
func TestKeptListFindingsAreNotDisclosed(t *testing.T) {
	c, err := BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	general, _ := c.List("urban_management_general")
	if general.KeptByDepartment == nil || !strings.HasPrefix(general.KeptByDepartment.Source, "篇十三 第七条(二)") {
		t.Fatalf("urban_management_general is not kept by its department: %+v", general.KeptByDepartment)
	}
	for _, l := range c.Lists() {
		if want := l.ID != "urban_management_general"; c.ListDisclosed(l.ID) != want {
			t.Errorf("list %s disclosed = %v, want %v", l.ID, !want, want)
		}
	}
	if c.ListDisclosed("no_such_list") {
		t.Error("a list the catalogue does not have is disclosed")
	}

	at := day0.AddDate(0, 2, 0)
	kept := entry("g1", "urban_management_general", person, day0, c)
	yellow := entry("y1", "urban_management_yellow", person, day0, c)
	nanning := entry("n1", "nanning_yellow", person, day0, c)
	findings := func(action string, entries ...Entry) (Decision, map[string]bool) {
		t.Helper()
		d, err := Decide(c, Query{Subject: person, Action: action, At: at}, entries)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, f := range d.Findings {
			out[f.Entry.ID] = f.Disclosed
		}
		return d, out
	}

	// Bank credit: no measure of the general list; the finding is there
	// (the decision is unchanged) but not to be disclosed.
	d, got := findings("bank_credit", kept, yellow, nanning)
	if d.Outcome != OutcomeClear || len(d.Findings) != 3 {
		t.Fatalf("bank_credit: outcome %s, %d findings", d.Outcome, len(d.Findings))
	}
	if got["g1"] || !got["y1"] || !got["n1"] {
		t.Fatalf("bank_credit disclosed %v, want only the yellow entries", got)
	}

	// Supervision: ug-01-interview rests on the entry, which is its basis.
	d, got = findings("supervision", kept)
	if !got["g1"] || len(d.Measures) != 1 || d.Measures[0].Measure.ID != "ug-01-interview" || d.Measures[0].EntryID != "g1" {
		t.Fatalf("supervision: disclosed %v, measures %+v", got, d.Measures)
	}
	// … also while the measure is suspended by an objection.
	objected := kept
	objected.Objections = []Objection{{ID: "o1", FiledAt: day0.AddDate(0, 1, 0)}}
	d, got = findings("supervision", objected)
	if !got["g1"] || d.Measures[0].Status != MeasureSuspended {
		t.Fatalf("suspended: disclosed %v, measures %+v", got, d.Measures)
	}
}

// The eligibility reason is in every caller's answer: it does not name a
// kept entry, while the subject is still not eligible.
func TestEligibilityReasonDoesNotNameAKeptEntry(t *testing.T) {
	c, err := BundledCatalog()
	if err != nil {
		t.Fatal(err)
	}
	at := day0.AddDate(0, 2, 0)
	kept := entry("g1", "urban_management_general", person, day0, c)
	d, err := Decide(c, Query{Subject: person, Action: "administrative_licensing", At: at}, []Entry{kept})
	if err != nil {
		t.Fatal(err)
	}
	var reason string
	for _, am := range d.Measures {
		if am.Measure.ID == "red-p3-01-green-channel" {
			if am.Status != MeasureNotApplicable {
				t.Fatalf("a subject with a general-level record is eligible: %+v", am)
			}
			reason = am.Reason
		}
	}
	if !strings.Contains(reason, "a record kept by its recording department was in force after") ||
		strings.Contains(reason, "g1") || strings.Contains(reason, "城市管理") {
		t.Fatalf("reason %q", reason)
	}
	// A disclosed entry is still named.
	yellow := entry("y1", "urban_management_yellow", person, day0, c)
	d, _ = Decide(c, Query{Subject: person, Action: "administrative_licensing", At: at}, []Entry{kept, yellow})
	for _, am := range d.Measures {
		if am.Measure.ID == "red-p3-01-green-channel" && !strings.Contains(am.Reason, "entry y1 (") {
			t.Fatalf("reason %q does not name the yellow entry", am.Reason)
		}
	}
}

// A kept black list (none is, today) is not named by the reason incentives
// are withheld for, which a red-listed subject's answer carries.
func TestWithheldReasonDoesNotNameAKeptEntry(t *testing.T) {
	yaml := strings.Replace(testCatalogYAML, "    reaches: [legal_representative, principal]\n    source: test\n",
		"    reaches: [legal_representative, principal]\n    source: test\n    kept_by_department: {text: 由部门做好信用信息记录。, source: test}\n", 1)
	c, err := LoadCatalog(fstest.MapFS{"test.yaml": {Data: []byte(yaml)}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decide(c, Query{Subject: org, Action: "honors", At: day0.AddDate(0, 1, 0)},
		[]Entry{entry("b1", "black", org, day0, c), entry("r1", "red", org, day0, c)})
	if err != nil {
		t.Fatal(err)
	}
	if d.Outcome != OutcomeClear || len(d.Measures) != 1 || d.Measures[0].Status != MeasureOverridden {
		t.Fatalf("decision %+v", d)
	}
	if r := d.Measures[0].Reason; strings.Contains(r, "b1") || strings.Contains(r, "黑名单") || !strings.Contains(r, "kept by its recording department") {
		t.Fatalf("reason %q", r)
	}
}

// kept_by_department needs its passage and source, and the lint finds the
// passage in the section cited.
func TestKeptByDepartmentValidatedAndLinted(t *testing.T) {
	noText := strings.Replace(testCatalogYAML, "    name: 重点关注\n", "    name: 重点关注\n    kept_by_department: {source: 篇四 第二条}\n", 1)
	if _, err := LoadCatalog(fstest.MapFS{"test.yaml": {Data: []byte(noText)}}); err == nil ||
		!strings.Contains(err.Error(), `list "attention": kept_by_department: text and source are required`) {
		t.Fatalf("error %v", err)
	}
	src := fstest.MapFS{"texts.txt": {Data: []byte(lintTestSource + "篇六:某市办法\n\n  第七条(一)对一般失信主体,由部门做好信用\n\n  信息记录。(二)对严重失信主体,发布至信用网站。\n")}}
	for _, tc := range []struct{ name, keeping, want string }{
		{"quoted", `{text: "对一般失信主体,由部门做好信用信息记录。", source: 篇六 第七条(一)}`, ""},
		{"wrong item", `{text: "对一般失信主体,由部门做好信用信息记录。", source: 篇六 第七条(二)}`, "kept_by_department: text not found in 篇六 第七条(二)"},
		{"invented", "{text: 不予公开。, source: 篇六 第七条(一)}", `kept_by_department: text not found in 篇六 第七条(一): "不予公开。"`},
		{"no such section", "{text: 不予公开。, source: 篇六 第九条}", "kept_by_department: source \"篇六 第九条\": 第九条 not found in 篇六"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := strings.Replace(lintTestBase, "source: 篇四}", "source: 篇四, kept_by_department: "+tc.keeping+"}", 1)
			faults := LintCatalog(fstest.MapFS{"base.yaml": {Data: []byte(base)}}, src)
			if tc.want == "" {
				if len(faults) != 0 {
					t.Fatalf("faults %v", faults)
				}
				return
			}
			if len(faults) != 1 || !strings.Contains(faults[0].Msg, tc.want) || faults[0].Measure != "list black" ||
				faults[0].File != "base.yaml" || faults[0].Line != 11 {
				t.Fatalf("faults %v, want %q at base.yaml:11", faults, tc.want)
			}
		})
	}
}
