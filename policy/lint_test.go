package policy

import (
	"io/fs"
	"os"
	"strings"
	"testing"
	"testing/fstest"
)

// defaultSourcesDir is where the source texts sit beside the repository;
// CREDGATE_SOURCES names another place.
const defaultSourcesDir = "../../shared/seeds"

func sourceTextsFS(t *testing.T) fs.FS {
	t.Helper()
	sourcesDir := defaultSourcesDir
	if d := os.Getenv("CREDGATE_SOURCES"); d != "" {
		sourcesDir = d
	}
	if _, err := os.Stat(sourcesDir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("source texts %s missing: %v", sourcesDir, err)
		}
		t.Skipf("source texts %s missing (%v): catalogue lint not run", sourcesDir, err)
	}
	return os.DirFS(sourcesDir)
}

func bundledFS(t *testing.T) fs.FS {
	t.Helper()
	sub, err := fs.Sub(bundled, "catalog")
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// The bundled catalogue says only what its sources say.
func TestLintBundledCatalogIsClean(t *testing.T) {
	for _, f := range LintCatalog(bundledFS(t), sourceTextsFS(t)) {
		t.Error(f)
	}
}

const lintTestSource = `篇四:某市办法

  第一条根据《某某管理办法》制定本办法。
  第二条对列入黑名单的单位,依法限制参与政府采购活动,并将其失信行为作为评先评优的重要参考。
  第三条***区各部门对失信单位从严审核行政许可,金融机构对失信自然人提
篇五:某县方案

  三、(九)对失信被执行人,限制乘坐飞机高铁软卧和其他高消费。
`

const lintTestBase = `actions:
  - {id: procurement, name: 政府采购}
  - {id: honors, name: 评先评优}
  - {id: licensing, name: 行政许可}
  - {id: credit, name: 信贷}
  - {id: travel, name: 乘坐飞机}
regions:
  - {code: "450100", name: 南宁市}
  - {code: "440300", name: 深圳市}
lists:
  - {id: black, name: 黑名单, kind: black, subject_kinds: [organization, person], source: 篇四}
`

// testMeasureYAML renders one measure of the lint tests.
func testMeasureYAML(id, action, effect, text, source, extra string) string {
	return "  - id: " + id + "\n    list: black\n    actions: [" + action + "]\n    effect: " + effect +
		"\n    mandatory: false\n    applies_to: [organization]\n    text: " + text +
		"\n    legal_basis: 《某某管理办法》\n    authority: 有关部门\n    source: " + source + "\n" + extra
}

const nanning = "    scope: {regions: [\"450100\"], source: 篇四 第一条}\n"

func TestLintCatalogFaults(t *testing.T) {
	for _, tc := range []struct {
		name, measure, want string
	}{
		{"clean", testMeasureYAML("m", "procurement", "restrict", "对列入黑名单的单位,依法限制参与政府采购活动。", "篇四 第二条", nanning), ""},
		{"elided", testMeasureYAML("m", "honors", "reference", "对列入黑名单的单位,…将其失信行为作为评先评优的重要参考。", "篇四 第二条", nanning), ""},
		{"wrong section", testMeasureYAML("m", "procurement", "restrict", "对列入黑名单的单位,依法限制参与政府采购活动。", "篇四 第三条", nanning), "text not found in 篇四 第三条 (it occurs elsewhere in the sources)"},
		{"invented", testMeasureYAML("m", "procurement", "prohibit", "对列入黑名单的单位,禁止参与政府采购活动。", "篇四 第二条", nanning), "it is not in the sources"},
		{"fragments out of order", testMeasureYAML("m", "honors", "reference", "作为评先评优的重要参考…对列入黑名单的单位。", "篇四 第二条", nanning), "text not found"},
		{"no such section", testMeasureYAML("m", "procurement", "restrict", "对列入黑名单的单位,依法限制参与政府采购活动。", "篇四 第九条", nanning), "第九条 not found in 篇四"},
		{"effect against verb", testMeasureYAML("m", "honors", "restrict", "对列入黑名单的单位,…将其失信行为作为评先评优的重要参考。", "篇四 第二条", nanning), "effect restrict does not follow the text's verb (参考 → reference)"},
		{"truncated", testMeasureYAML("m", "credit", "restrict", "金融机构对失信自然人提", "篇四 第三条", nanning), "text does not end a sentence"},
		{"placeholder served", testMeasureYAML("m", "licensing", "strict_review", `"***区各部门对失信单位从严审核行政许可。"`, "篇四 第三条", nanning), "text serves a *** placeholder without a placeholder note"},
		{"placeholder noted", testMeasureYAML("m", "licensing", "strict_review", `"***区各部门对失信单位从严审核行政许可。"`, "篇四 第三条", nanning+"    placeholder: the district is left blank\n"), ""},
		{"local unscoped", testMeasureYAML("m", "procurement", "restrict", "对列入黑名单的单位,依法限制参与政府采购活动。", "篇四 第二条", ""), "measure of a local text (篇四, region 450100) has no region scope"},
		{"scoped elsewhere", testMeasureYAML("m", "procurement", "restrict", "对列入黑名单的单位,依法限制参与政府采购活动。", "篇四 第二条", "    scope: {regions: [\"440300\"], source: x}\n"), "scope region 440300 lies outside 450100"},
		{"blank place, local basis", testMeasureYAML("m", "travel", "restrict", "对失信被执行人,限制乘坐飞机高铁软卧和其他高消费。", "篇五 三(九)", ""), "篇五 leaves its place blank"},
		{"source fix applied", testMeasureYAML("m", "procurement", "restrict", "对列入黑名单的单位,依法限制参加政府采购活动。", "篇四 第二条", nanning+"    source_fixes: [{from: 限制参与, to: 限制参加, why: test}]\n"), ""},
		{"source fix idle", testMeasureYAML("m", "procurement", "restrict", "对列入黑名单的单位,依法限制参与政府采购活动。", "篇四 第二条", nanning+"    source_fixes: [{from: 不存在, to: 存在, why: test}]\n"), "source fix \"不存在\" → \"存在\" does not apply"},
		{"duplicate", testMeasureYAML("m", "procurement", "restrict", "对列入黑名单的单位,依法限制参与政府采购活动。", "篇四 第二条", nanning) +
			testMeasureYAML("m2", "procurement", "restrict", "对列入黑名单的单位,依法限制参与政府采购活动。", "篇四 第二条", nanning), "same text, list and action as m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			measures := "measures:\n" + tc.measure
			cat := fstest.MapFS{"base.yaml": {Data: []byte(lintTestBase)}, "m.yaml": {Data: []byte(measures)}}
			src := fstest.MapFS{"texts.txt": {Data: []byte(lintTestSource)}}
			faults := LintCatalog(cat, src)
			if tc.want == "" {
				for _, f := range faults {
					t.Errorf("unexpected fault %s", f)
				}
				return
			}
			for _, f := range faults {
				if strings.Contains(f.Msg, tc.want) {
					if f.File != "m.yaml" || f.Line < 2 {
						t.Errorf("fault at %s:%d", f.File, f.Line)
					}
					return
				}
			}
			t.Errorf("no fault %q among %v", tc.want, faults)
		})
	}
}

func TestLintCatalogTitlesAndLines(t *testing.T) {
	measures := "measures:\n" + testMeasureYAML("a", "procurement", "restrict", "对列入黑名单的单位,依法限制参与政府采购活动。", "篇四 第二条", nanning) + "\n" +
		strings.Replace(testMeasureYAML("b", "honors", "reference", "对列入黑名单的单位,…将其失信行为作为评先评优的重要参考。", "篇四 第二条", nanning), "《某某管理办法》", "《不存在的办法》", 1)
	cat := fstest.MapFS{"base.yaml": {Data: []byte(lintTestBase)}, "m.yaml": {Data: []byte(measures)}}
	faults := LintCatalog(cat, fstest.MapFS{"texts.txt": {Data: []byte(lintTestSource)}})
	if len(faults) != 1 || faults[0].Measure != "b" || faults[0].Line != 14 || !strings.Contains(faults[0].Msg, "《不存在的办法》, a title the sources do not give") {
		t.Fatalf("faults %v", faults)
	}
	if got := faults[0].String(); !strings.HasPrefix(got, "m.yaml:14: b: legal_basis cites") {
		t.Fatalf("rendered %q", got)
	}
	// A catalogue that does not load is one fault; so are missing sources.
	if f := LintCatalog(fstest.MapFS{}, fstest.MapFS{"texts.txt": {Data: []byte(lintTestSource)}}); len(f) != 1 {
		t.Fatalf("empty catalogue: %v", f)
	}
	if f := LintCatalog(cat, fstest.MapFS{}); len(f) != 1 || !strings.Contains(f[0].Msg, "no source texts") {
		t.Fatalf("no sources: %v", f)
	}
}

// A measure the loader refuses (here a scope without its source) is still
// reported at its file and line.
func TestLintCatalogLoadFaultIsPlaced(t *testing.T) {
	measures := "measures:\n" + testMeasureYAML("a", "procurement", "restrict", "对列入黑名单的单位,依法限制参与政府采购活动。", "篇四 第二条", nanning) + "\n" +
		testMeasureYAML("b", "procurement", "restrict", "对列入黑名单的单位,依法限制参与政府采购活动。", "篇四 第二条", "    scope: {regions: [\"450100\"]}\n")
	cat := fstest.MapFS{"base.yaml": {Data: []byte(lintTestBase)}, "m.yaml": {Data: []byte(measures)}}
	faults := LintCatalog(cat, fstest.MapFS{"texts.txt": {Data: []byte(lintTestSource)}})
	if len(faults) != 1 || faults[0].File != "m.yaml" || faults[0].Line != 14 || faults[0].Measure != "b" || !strings.Contains(faults[0].Msg, "scope: source is required") {
		t.Fatalf("faults %v", faults)
	}
	broken := fstest.MapFS{"base.yaml": {Data: []byte(lintTestBase)}, "m.yaml": {Data: []byte("measures:\n  - id: [\n")}}
	if f := LintCatalog(broken, fstest.MapFS{"texts.txt": {Data: []byte(lintTestSource)}}); len(f) != 1 || f[0].File != "m.yaml" || f[0].Line == 0 {
		t.Fatalf("yaml error: %v", f)
	}
}
