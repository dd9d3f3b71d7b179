package policy

import (
	"io/fs"
	"os"
	"testing"
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
