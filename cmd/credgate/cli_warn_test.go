package main

import (
	"strings"
	"testing"
)

// A secret given as a flag is warned of on the command's own stderr
// (where its errors go, and what a test or a wrapper captures), naming the
// setting and never the value.
func TestFlagSecretWarningOnTheCommandsStderr(t *testing.T) {
	const secret = "postgres://u:S3cretPG@127.0.0.1:1/db"
	code, out := runCLI("config", "--postgres-url", secret)
	if code != 0 || !strings.Contains(out, "given as a flag") || !strings.Contains(out, "store.postgres_url") {
		t.Fatalf("exit %d, output without the warning:\n%s", code, out)
	}
	if strings.Contains(out, "S3cretPG") {
		t.Fatalf("the warning shows the password:\n%s", out)
	}
}
