package policy

import (
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

// withLists is the bundled catalogue with lists.yaml edited by edit.
func withLists(t *testing.T, edit func(string) string) fs.FS {
	t.Helper()
	files := fstest.MapFS{}
	b := bundledFS(t)
	names, err := fs.Glob(b, "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		data, err := fs.ReadFile(b, n)
		if err != nil {
			t.Fatal(err)
		}
		if n == "lists.yaml" {
			edited := edit(string(data))
			if edited == string(data) {
				t.Fatal("the edit changed nothing")
			}
			data = []byte(edited)
		}
		files[n] = &fstest.MapFile{Data: data}
	}
	return files
}

func listFaults(faults []LintFault, list string) []string {
	var out []string
	for _, f := range faults {
		if f.Measure == "list "+list {
			out = append(out, f.Msg)
		}
	}
	return out
}

// TestLintListRuleSources: a rule of a national list resting only on a
// text whose place is blank (篇七 xx市's early repair, 第五条(六)) is a
// fault; the same rule citing the national text is not. The levels of a
// points rule set lapse alike (篇十三 第十六条): a level without validity is
// a fault. A placed city's quoted objection extension must be in its
// cited section.
func TestLintListRuleSources(t *testing.T) {
	src := sourceTextsFS(t)
	const anchor = "    on_enter_remove_from_lists: [safety_production_key_attention]\n"
	for _, tc := range []struct {
		name, list, want string
		edit             func(string) string
	}{
		{"repair from a blank place on a national list", "safety_production_blacklist", "repair rests only on 篇七", func(s string) string {
			return strings.Replace(s, anchor, anchor+"    repair:\n      requires_review: true\n      source: 篇七 第五条(六)\n", 1)
		}},
		{"repair citing the national text", "safety_production_blacklist", "", func(s string) string {
			return strings.Replace(s, anchor, anchor+"    repair:\n      requires_review: true\n      source: 篇十二 第七条; 篇七 第五条(六)\n", 1)
		}},
		{"a level of a rule set without validity", "urban_management_general", "no validity, while", func(s string) string {
			return strings.Replace(s, "    kind: general\n    subject_kinds: [organization, person]\n    validity:\n      years: 5\n",
				"    kind: general\n    subject_kinds: [organization, person]\n", 1)
		}},
		{"objection extension quoting a passage not in its section", "safety_production_blacklist", "objection_extends_validity: text not found", func(s string) string {
			return strings.Replace(s, anchor, anchor+"    objection_extends_validity:\n      text: 异议投诉被驳回的,其联合惩戒时限从异议投诉被驳回之日起继续计算。\n      source: 篇十二 第六条\n", 1)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := listFaults(LintCatalog(withLists(t, tc.edit), src), tc.list)
			if tc.want == "" {
				if len(got) != 0 {
					t.Fatalf("faults %q, want none", got)
				}
				return
			}
			if len(got) == 0 || !strings.Contains(strings.Join(got, "\n"), tc.want) {
				t.Fatalf("faults %q, want one containing %q", got, tc.want)
			}
		})
	}
}
