package readmetest

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// writers are the commands of the walk-through that write into the
// working tree without naming the file: serve's data dir (store.data_dir,
// ./data by default) and audit's state file (its --state,
// credgate-audit.json by default).
var writers = map[string]*regexp.Regexp{
	"data":                regexp.MustCompile(`(?m)^\s*(bin/credgate|go run \./cmd/credgate) serve\b`),
	"credgate-audit.json": regexp.MustCompile(`bin/credgate audit\b[^\n]*`),
}

var (
	// A shell redirection's target, and the directory of mkdir -p and
	// catalog export.
	redirect  = regexp.MustCompile(`(?:^|[^0-9&>])>>?\s*([^\s&|;)<>]+)`)
	makesDirs = regexp.MustCompile(`(?:mkdir -p|catalog export)\s+([^\s&|;)]+)`)
	// The instruction to start afresh, in the prose before the walk-through.
	resetLine = regexp.MustCompile("`rm -rf ([^`]+)`\\s+to start afresh")
)

// TestResetNamesWhatTheWalkThroughWrites: the README's instruction to
// start afresh (`rm -rf …`) names everything the walk-through's blocks
// write into the working tree (bin/, the build's output, aside), since a
// file left by an earlier run fails a later one: a credgate-audit.json
// pins the earlier log, so audit exits 5; `catalog export` refuses a
// ./catalog that exists.
func TestResetNamesWhatTheWalkThroughWrites(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(moduleRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	m := resetLine.FindStringSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no \"`rm -rf …` to start afresh\"")
	}
	reset := strings.Fields(m[1])
	written := map[string]string{} // first path element → the block writing it
	for _, bl := range parseBlocks(t, readme) {
		if bl.mark == markNotRun {
			continue // a template, or a command shown whose effect a run block repeats
		}
		text := bl.text
		if bl.mark == markServer {
			text = "bin/credgate serve " + strings.Join(bl.args, " ")
		}
		var paths []string
		for _, re := range []*regexp.Regexp{redirect, makesDirs} {
			for _, m := range re.FindAllStringSubmatch(text, -1) {
				paths = append(paths, strings.Trim(m[1], `"'`))
			}
		}
		for name, re := range writers {
			for _, c := range re.FindAllString(text, -1) {
				if name != "credgate-audit.json" || !strings.Contains(c, "--state") {
					paths = append(paths, name)
				}
			}
		}
		for _, p := range paths {
			if strings.HasPrefix(p, "$") || strings.HasPrefix(p, "/") || strings.HasPrefix(p, "<") {
				continue // outside the working tree ($PRIVATE, /dev/null) or a heredoc
			}
			top := strings.Split(filepath.ToSlash(filepath.Clean(p)), "/")[0]
			if _, seen := written[top]; !seen && top != "bin" {
				written[top] = bl.String()
			}
		}
	}
	if len(written) == 0 {
		t.Fatal("found nothing the walk-through writes")
	}
	for name, where := range written {
		if !slices.Contains(reset, name) && !slices.Contains(reset, name+"/") {
			t.Errorf("%s writes %s into the working tree, which the reset instruction (`rm -rf %s`) leaves", where, name, m[1])
		} else {
			t.Logf("%s (written by %s) is reset", name, where)
		}
	}
}
