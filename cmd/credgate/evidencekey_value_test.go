package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/config"
)

// An evidence.key that is not exactly PRIVATE+KEY+… was opened as a file
// and the failed open printed it: the whole signing key when it was
// quoted. The value is named only when it may be a path, never a key.
func TestEvidenceKeyValueNotRepeated(t *testing.T) {
	key, err := evidence.GenerateSignerKey("credgate.test")
	if err != nil {
		t.Fatal(err)
	}
	body := key[strings.LastIndex(key, "+")+1:] // the secret part
	const seed = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	for _, tc := range []struct{ name, value, want string }{
		{"double quotes", `"` + key + `"`, "does not begin with PRIVATE+KEY+"},
		{"single quotes", "'" + key + "'", "does not begin with PRIVATE+KEY+"},
		{"after other text", "key=" + key, "does not begin with PRIVATE+KEY+"},
		{"lower case", strings.ToLower(key), "does not begin with PRIVATE+KEY+"},
		{"cut", strings.TrimPrefix(key, "PRIVATE+"), "neither a note signer key"},
		{"a token seed", seed, "neither a note signer key"},
		{"raw base64 seed", strings.TrimSuffix(seed, "="), "neither a note signer key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := configuredSigner(config.Evidence{Key: tc.value, Origin: "credgate.test/evidence"})
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v: want %q", err, tc.want)
			}
			for _, leak := range []string{body, strings.ToLower(body), strings.TrimSuffix(seed, "=")} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("the value is repeated: %v", err)
				}
			}
		})
	}
	// A path is still named, so that its operator can tell which file.
	missing := filepath.Join(t.TempDir(), "evidence-signing.key")
	if _, err := configuredSigner(config.Evidence{Key: missing, Origin: "credgate.test/evidence"}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v", err)
	}
	// The key itself, and a file holding it, are accepted.
	file := filepath.Join(t.TempDir(), "k")
	if err := os.WriteFile(file, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{key, file} {
		if s, err := configuredSigner(config.Evidence{Key: v, Origin: "credgate.test/evidence"}); err != nil || s == nil {
			t.Errorf("%.20s…: %v", v, err)
		}
	}

	// credgate config (and serve, with the same words) says so by setting.
	t.Setenv("CREDGATE_EVIDENCE_KEY", `"`+key+`"`)
	code, out, errOut := runCmd(t, "config", "--data-dir", t.TempDir())
	if code != 1 || !strings.Contains(errOut, "evidence.key (environment CREDGATE_EVIDENCE_KEY)") || strings.Contains(errOut+out, body) {
		t.Errorf("config: exit %d, %q", code, errOut)
	}
}
