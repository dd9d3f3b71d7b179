package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const lintSource = `篇一:测试

  第一条对列入黑名单的企业,依法限制参与政府采购活动。
  第二条对列入黑名单的企业,将其失信行为作为评先评优的重要参考。
`

const lintCatalog = `actions:
  - {id: government_procurement, name: 政府采购}
  - {id: honors, name: 评先评优}
lists:
  - id: black
    name: 黑名单
    kind: black
    subject_kinds: [organization]
    source: 篇一 第一条
`

const lintMeasures = `measures:
  - id: good
    list: black
    actions: [government_procurement]
    effect: restrict
    mandatory: true
    applies_to: [organization]
    text: 对列入黑名单的企业,依法限制参与政府采购活动。
    legal_basis: 篇一 第一条
    authority: 财政部门
    source: 篇一 第一条

  - id: wrong-effect
    list: black
    actions: [honors]
    effect: prohibit
    mandatory: false
    applies_to: [organization]
    text: 对列入黑名单的企业,将其失信行为作为评先评优的重要参考。
    legal_basis: 篇一 第二条
    authority: 有关部门
    source: 篇一 第二条
`

func writeLintFixture(t *testing.T, measures string) (catalog, sources string) {
	t.Helper()
	root := t.TempDir()
	catalog, sources = filepath.Join(root, "catalog"), filepath.Join(root, "seeds")
	for _, d := range []string{catalog, sources} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{
		filepath.Join(sources, "texts.txt"):     lintSource,
		filepath.Join(catalog, "base.yaml"):     lintCatalog,
		filepath.Join(catalog, "measures.yaml"): measures,
	} {
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return catalog, sources
}

// A faulty catalogue: every fault is printed with the file and the line of
// its measure, and the command exits 1.
func TestCatalogLintReportsFileAndLine(t *testing.T) {
	catalog, sources := writeLintFixture(t, lintMeasures)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"catalog", "lint", catalog, "--sources", sources}, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stdout %q stderr %q", code, out.String(), errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "measures.yaml:13: wrong-effect: effect prohibit does not follow the text's verb") {
		t.Fatalf("faults %q", lines)
	}
	// A text the cited section does not hold is caught, with its line.
	bad := strings.Replace(lintMeasures, "依法限制参与政府采购活动", "依法禁止参与政府采购活动", 1)
	bad = strings.Replace(bad, "effect: prohibit", "effect: reference", 1)
	catalog, sources = writeLintFixture(t, bad)
	out.Reset()
	code = run(context.Background(), []string{"catalog", "lint", "--sources", sources, catalog}, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "measures.yaml:2: good: text not found in 篇一 第一条") {
		t.Fatalf("exit %d, faults %q", code, out.String())
	}
}

func TestCatalogLintCleanAndHelp(t *testing.T) {
	fixed := strings.Replace(lintMeasures, "effect: prohibit", "effect: reference", 1)
	catalog, sources := writeLintFixture(t, fixed)
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"catalog", "lint", catalog, "--sources", sources}, &out, &errb); code != 0 || strings.TrimSpace(out.String()) != "clean" {
		t.Fatalf("exit %d, stdout %q stderr %q", code, out.String(), errb.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"catalog", "lint", "--help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "Usage: credgate catalog lint") {
		t.Fatalf("--help: exit %d, stdout %q", code, out.String())
	}
	if code := run(context.Background(), []string{"catalog", "lint", catalog, "--sources", filepath.Join(catalog, "missing")}, &out, &errb); code != 1 {
		t.Fatalf("missing sources: exit %d", code)
	}
}

// The bundled catalogue is clean against the source texts beside the
// repository (skipped when they are absent, except under CI).
func TestCatalogLintBundled(t *testing.T) {
	sources := "../../../shared/seeds"
	if d := os.Getenv("CREDGATE_SOURCES"); d != "" {
		sources = d
	}
	if _, err := os.Stat(sources); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("source texts %s missing: %v", sources, err)
		}
		t.Skipf("source texts %s missing", sources)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"catalog", "lint", "--sources", sources}, &out, &errb); code != 0 {
		t.Fatalf("exit %d:\n%s%s", code, out.String(), errb.String())
	}
}
