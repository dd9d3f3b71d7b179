package deploy

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A path of the repository named in a deployment file's comments.
var repoPath = regexp.MustCompile(`\b(?:deploy|docs|cmd|gateway|service|adapters|internal)/[A-Za-z0-9_./-]*[A-Za-z0-9_]`)

// TestReferencesExist: the files the deployment files point their reader
// at (the tests that keep them true, the docs) exist.
func TestReferencesExist(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasSuffix(path, "_test.go") || strings.HasPrefix(path, "compose/secrets/") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, ref := range repoPath.FindAllString(string(b), -1) {
			ref = strings.TrimRight(ref, ".")
			if strings.HasPrefix(ref, "deploy/compose/secrets") {
				continue // made by the operator, git-ignored
			}
			if _, err := os.Stat(filepath.Join("..", strings.SplitN(ref, ":", 2)[0])); err != nil {
				t.Errorf("deploy/%s names %s, which does not exist", path, ref)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
