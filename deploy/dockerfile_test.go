package deploy

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/mattn/go-shellwords"
)

// dockerBuildLine is the Dockerfile's `go build` step: the environment it
// sets and go's arguments, with ${ARG}s expanded to this machine's
// platform (what BuildKit passes as TARGETOS and TARGETARCH).
func dockerBuildLine(t *testing.T) (env, args []string) {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	// Join continued lines; find the RUN that builds.
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	var run string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "RUN ") && strings.Contains(line, "go build") {
			if run != "" {
				t.Fatal("the Dockerfile has more than one go build step")
			}
			run = strings.TrimPrefix(line, "RUN ")
		}
	}
	if run == "" {
		t.Fatal("no RUN … go build in the Dockerfile")
	}
	vars := map[string]string{"TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH}
	words, err := shellwords.Parse(os.Expand(run, func(k string) string {
		v, ok := vars[k]
		if !ok {
			t.Fatalf("the build step uses ${%s}, which this test does not know", k)
		}
		return v
	}))
	if err != nil {
		t.Fatalf("parse %q: %v", run, err)
	}
	assign := regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`)
	for len(words) > 0 && assign.MatchString(words[0]) {
		env, words = append(env, words[0]), words[1:]
	}
	if len(words) < 2 || words[0] != "go" || words[1] != "build" {
		t.Fatalf("the build step is not `[VAR=…] go build …`: %q", run)
	}
	return env, words[1:]
}

// buildAsDockerfile builds credgate exactly as the Dockerfile does, from
// the repository root, into a temporary directory, and returns the binary.
func buildAsDockerfile(t *testing.T) string {
	t.Helper()
	env, args := dockerBuildLine(t)
	out := filepath.Join(t.TempDir(), "credgate")
	found := false
	for i, a := range args {
		if a == "-o" && i+1 < len(args) {
			args[i+1], found = out, true
		}
	}
	if !found {
		t.Fatalf("the build step names no -o output: %v", args)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s (env %v): %v\n%s", strings.Join(args, " "), env, err, b)
	}
	return out
}

// The Dockerfile's build step, run here: it builds with CGO off (the
// image's binary must run without a C library: the file is static), and
// the binary it makes runs.
func TestDockerfileBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds credgate")
	}
	env, args := dockerBuildLine(t)
	t.Logf("env %v go %v", env, args)
	if !strings.Contains(strings.Join(env, " "), "CGO_ENABLED=0") {
		t.Errorf("the image's build does not turn CGO off: %v", env)
	}
	bin := buildAsDockerfile(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the binary needs a dynamic loader: it would not run on the image")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary links %v", libs)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "credgate ") {
		t.Fatalf("credgate version: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
