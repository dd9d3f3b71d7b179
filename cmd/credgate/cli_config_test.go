package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// credgate config refuses what serve would refuse before it binds — files,
// directories and URLs, not only values — and with serve's message.
func TestConfigChecksWhatServeChecks(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nonexistent")
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	damaged := t.TempDir()
	if err := os.WriteFile(filepath.Join(damaged, evidenceKeyFile), []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"catalogue", nil, []string{"--catalog", missing}, "catalog.dir"},
		{"holidays", nil, []string{"--holidays", missing}, "catalog.holidays"},
		{"sources", nil, []string{"--sources", missing}, "upstream.sources"},
		{"evidence key file", nil, []string{"--evidence-key", missing}, "evidence.key (flag --evidence-key)"},
		{"damaged key in the data dir", nil, []string{"--data-dir", damaged}, evidenceKeyFile},
		{"data dir a file", nil, []string{"--data-dir", file}, "store.data_dir (flag --data-dir)"},
		{"spool dir under a file", nil, []string{"--spool-dir", filepath.Join(file, "spool")}, "evidence.spool_dir (flag --spool-dir): " + file + " is not a directory"},
		{"redis url", map[string]string{"CREDGATE_REDIS_URL": "redis://127.0.0.1:6379/zz"}, nil, "redis.url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := append([]string{"--data-dir", filepath.Join(t.TempDir(), "data")}, tc.args...)
			code, out, errOut := runCmd(t, append([]string{"config"}, args...)...)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Errorf("config %v: exit %d, stderr %q, want 1 naming %q", args, code, errOut, tc.want)
			}
			// serve refuses it with the same words, before it binds.
			code, _, serveErr := runCmd(t, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
			said, served := strings.TrimPrefix(errOut, "credgate config: "), strings.TrimPrefix(serveErr, "credgate serve: ")
			if code != 1 || served != said {
				t.Errorf("serve %v: exit %d, %q; config said %q", args, code, served, said)
			}
			if out != "" {
				t.Errorf("config printed settings it refused:\n%s", out)
			}
		})
	}
}
