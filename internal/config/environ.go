package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrUnknownVariable is wrapped by the error of a CREDGATE_ variable that
// credgate does not read.
var ErrUnknownVariable = errors.New("unknown CREDGATE_ variable")

// envPrefix begins every variable of credgate's.
const envPrefix = "CREDGATE_"

// otherVariable reports whether name is a CREDGATE_ variable that is read,
// or set where credgate runs, although it is not a setting's.
func otherVariable(name string) bool {
	switch name {
	case EnvConfig,
		// credgate audit --full's auditor credential (cmd/credgate/audit.go).
		"CREDGATE_AUDIT_CLIENT_ID", "CREDGATE_AUDIT_CLIENT_SECRET",
		// The Go client's example (README.md, client/example_test.go): a
		// program of a partner's, often run beside credgate's commands.
		"CREDGATE_CLIENT_ID", "CREDGATE_CLIENT_SECRET", "CREDGATE_EVIDENCE_VKEY",
		// deploy/compose.yaml's image tag, interpolated by compose.
		"CREDGATE_VERSION":
		return true
	}
	return false
}

// testVariable reports whether name is a variable of credgate's own tests
// and benchmarks. They are never a setting, but the tests that start serve
// or another command (in process, or as a child that inherits the
// environment) run with them set, so a command must not refuse them.
// deploy's and this package's tests list every CREDGATE_ name the
// repository's Go files use (TestEveryVariableInTheRepositoryIsKnown).
func testVariable(name string) bool {
	for _, p := range []string{"CREDGATE_TEST_", "CREDGATE_GEN_", "CREDGATE_SCREEN_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	switch name {
	case "CREDGATE_BENCH_IMPORT_ENTRIES", "CREDGATE_BENCH_LIST_SIZES", "CREDGATE_BENCH_TREE_LEAVES",
		"CREDGATE_CHROMIUM", "CREDGATE_SCREENSHOTS", "CREDGATE_FAULTS_BINARY",
		"CREDGATE_WATCHLIST_N", "CREDGATE_WRITE_FUZZ_SEED":
		return true
	}
	return false
}

// KnownVariable reports whether name is a CREDGATE_ variable credgate
// accepts in its environment: a setting's (of any command), or one of the
// few others (CREDGATE_CONFIG, the auditor's credential …).
func KnownVariable(name string) bool {
	return otherVariable(name) || testVariable(name) ||
		slices.ContainsFunc(settings, func(s *Setting) bool { return s.Env == name })
}

// checkEnviron refuses the CREDGATE_ variables of environ (NAME=value
// entries) that credgate does not read: a misspelt one would otherwise
// leave its setting at the default without a word — a server on an empty
// SQLite store where PostgreSQL was meant. Values are never repeated.
func checkEnviron(environ []string) error {
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, envPrefix) && !KnownVariable(name) && !slices.Contains(unknown, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	parts := make([]string, len(unknown))
	for i, name := range unknown {
		parts[i] = fmt.Sprintf("%s (did you mean %s?)", name, nearestVariable(name))
	}
	what := "is not a variable credgate reads"
	if len(unknown) > 1 {
		what = "are not variables credgate reads"
	}
	return &Error{Key: "environment",
		Err: fmt.Errorf("%w: %s %s; correct or unset each (docs/CONFIGURATION.md lists every setting's variable)",
			ErrUnknownVariable, strings.Join(parts, ", "), what)}
}

// nearestVariable is the known variable whose name is fewest edits from
// name: settings' first, then the others.
func nearestVariable(name string) string {
	candidates := make([]string, 0, len(settings)+8)
	for _, s := range settings {
		candidates = append(candidates, s.Env)
	}
	candidates = append(candidates, EnvConfig, "CREDGATE_AUDIT_CLIENT_ID", "CREDGATE_AUDIT_CLIENT_SECRET")
	best, bestD := "", -1
	for _, c := range candidates {
		if d := editDistance(name, c); bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b (bytes: variable
// names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
