package config

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// loadEnviron loads keys with env as the whole environment (listed and
// looked up) and args as flags; warnings go to warn.
func loadEnviron(t *testing.T, keys []string, env map[string]string, warn io.Writer, args ...string) (*Config, error) {
	t.Helper()
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	l := NewLoader(keys,
		WithEnviron(func() []string { return environ }),
		WithLookupEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }),
		WithWarnings(warn))
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	l.Register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return l.Load()
}

// A misspelt variable once left its setting at the default without a word:
// `CREDGATE_POSTGRESQL_URL=… credgate serve` ran on an empty SQLite store.
func TestUnknownVariableRefused(t *testing.T) {
	env := map[string]string{
		"CREDGATE_POSTGRESQL_URL": "postgres://u:hunter2@db/x",
		"CREDGATE_REDIS_URI":      "redis://:hunter2@cache:6379/0",
		"CREDGATE_DATA_DIR":       "/d",
	}
	_, err := loadEnviron(t, all, env, io.Discard)
	if err == nil {
		t.Fatal("misspelt variables accepted")
	}
	if !errors.Is(err, ErrUnknownVariable) || !errors.Is(err, ErrInvalid) {
		t.Errorf("%v: not ErrUnknownVariable and ErrInvalid", err)
	}
	for _, w := range []string{"CREDGATE_POSTGRESQL_URL (did you mean CREDGATE_POSTGRES_URL?)", "CREDGATE_REDIS_URI (did you mean CREDGATE_REDIS_URL?)"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q lacks %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a value is repeated: %v", err)
	}

	// What is read, or set where credgate runs, is accepted: settings'
	// variables (also of settings this command does not read), the
	// documented others, and the tests' own.
	ok := map[string]string{
		"CREDGATE_URL": "http://h:1", "CREDGATE_MAX_STALENESS": "abc", // serve's, not a client's: not even parsed
		"CREDGATE_AUDIT_CLIENT_ID": "a", "CREDGATE_AUDIT_CLIENT_SECRET": "s", "CREDGATE_VERSION": "1.0.0",
		"CREDGATE_TEST_POSTGRES_URL": "x", "CREDGATE_TEST_RUN_AS_MAIN": "1", "CREDGATE_GEN_IMPORT": "1", "CREDGATE_SCREEN_FILES_DIR": "/tmp",
		"NOT_CREDGATE_X": "1", "credgate_lower": "1",
	}
	if c, err := loadEnviron(t, []string{"client"}, ok, io.Discard); err != nil || c.Client.URL != "http://h:1" {
		t.Fatalf("known variables refused: %v", err)
	}
}

// Every CREDGATE_ name the repository's code and deployment files use is
// one a command accepts: else `go test` (whose tests start commands with
// their variables set) or a deployment would stop at the first load.
func TestEveryVariableInTheRepositoryIsKnown(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`CREDGATE_[A-Z0-9_]*`)
	here, _ := filepath.Abs(".")
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == ".git" || n == "node_modules" || n == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		ext := filepath.Ext(path)
		if ext != ".go" && ext != ".yaml" && ext != ".yml" && ext != ".service" && ext != ".conf" && ext != ".env" && d.Name() != "Dockerfile" {
			return nil
		}
		if filepath.Dir(path) == here && strings.HasSuffix(path, "_test.go") {
			return nil // this package's tests name wrong ones on purpose
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range name.FindAllString(string(b), -1) {
			if !KnownVariable(n) && !strings.HasSuffix(n, "_") { // a prefix
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s names %s, which a command would refuse: a setting's variable, or add it to otherVariable or testVariable", rel, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A secret given as a flag is warned of, once, by setting and flag; the
// value never appears. Flags that carry no secret (a key's file, a URL
// without a password) and secrets from the environment are not warned of.
func TestSecretFlagWarned(t *testing.T) {
	const seed = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	const pgPW, redisPW = "pgsecretpw", "redissecretpw"
	var warn bytes.Buffer
	_, err := loadEnviron(t, all, nil, &warn,
		"--token-key", seed,
		"--postgres-url", "postgres://credgate:"+pgPW+"@db:5432/credgate",
		"--redis-url", "redis://:"+redisPW+"@cache:6379/0",
		"--evidence-key", "/run/secrets/evidence.key")
	if err != nil {
		t.Fatal(err)
	}
	out := warn.String()
	if n := strings.Count(out, "\n"); n != 3 {
		t.Errorf("%d warnings, want 3:\n%s", n, out)
	}
	for _, w := range []string{`"setting":"access.token_key","flag":"--token-key","env":"CREDGATE_TOKEN_KEY"`,
		`"setting":"store.postgres_url"`, `"setting":"redis.url"`, "process list"} {
		if !strings.Contains(out, w) {
			t.Errorf("warnings lack %q:\n%s", w, out)
		}
	}
	for _, leak := range []string{seed, pgPW, redisPW, "evidence.key"} {
		if strings.Contains(out, leak) {
			t.Errorf("warnings name %q:\n%s", leak, out)
		}
	}

	warn.Reset()
	_, err = loadEnviron(t, all, map[string]string{"CREDGATE_TOKEN_KEY": seed}, &warn,
		"--postgres-url", "postgres://credgate@db:5432/credgate?passfile=/run/secrets/pgpass",
		"--redis-url", "redis://cache:6379/0",
		"--token-verify-keys", "pub:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8")
	if err != nil {
		t.Fatal(err)
	}
	if warn.Len() != 0 {
		t.Errorf("warned of flags without secrets, or of the environment:\n%s", warn.String())
	}

	// A command without serve's log settings warns in text.
	warn.Reset()
	if _, err := loadEnviron(t, []string{"store"}, nil, &warn, "--postgres-url", "host=db password=hunter2"); err != nil {
		t.Fatal(err)
	}
	if out := warn.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "setting=store.postgres_url flag=--postgres-url") || strings.Contains(out, "hunter2") {
		t.Errorf("text warning: %s", out)
	}
}

// NaN passed `f < 0 || f > 1`, as every comparison with it is false.
func TestSampleRatioNotANumber(t *testing.T) {
	for _, v := range []string{"NaN", "nan", "+Inf", "-Inf", "1.5", "-0.1"} {
		if _, err := load(t, []string{"tracing"}, map[string]string{"CREDGATE_TRACING_SAMPLE_RATIO": v}, ""); err == nil || !strings.Contains(err.Error(), "want a number from 0 to 1") {
			t.Errorf("%s: %v", v, err)
		}
	}
	for _, v := range []string{"0", "0.01", "1"} {
		if _, err := load(t, []string{"tracing"}, map[string]string{"CREDGATE_TRACING_SAMPLE_RATIO": v}, ""); err != nil {
			t.Errorf("%s: %v", v, err)
		}
	}
}

// The PostgreSQL URL is parsed as the pool parses it, so what would fail
// the start fails the load; the password never appears.
func TestPostgresURLParsed(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"postgres://u:hunter2@db:badport/x", "invalid port"},
		{"postgres://u:hunter2@db:5432/x?sslmode=bogus", "sslmode is invalid"},
		{"host=db password=hunter2 port=abc", "invalid port"},
		{"host=db password='hunter2 x' sslmode=nope", "sslmode is invalid"},
		{"postgres://u:hun%zzter2@db/x", "want a PostgreSQL URL"},
		{"mysql://root:hunter2@db/x", "want a PostgreSQL URL"},
		{"db.internal", "want a PostgreSQL URL"},
	} {
		_, err := load(t, []string{"store"}, map[string]string{"CREDGATE_POSTGRES_URL": tc.url}, "")
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "CREDGATE_POSTGRES_URL") {
			t.Errorf("%s: %v, want %q without the password", tc.url, err, tc.want)
		}
	}
	for _, ok := range []string{
		"postgres://credgate@postgres:5432/credgate?sslmode=disable&passfile=/run/secrets/pgpass",
		"postgresql://u:p@db/x?sslmode=require",
		"host=/var/run/postgresql dbname=credgate",
	} {
		if _, err := load(t, []string{"store"}, map[string]string{"CREDGATE_POSTGRES_URL": ok}, ""); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

func TestWebhookBackoffOrder(t *testing.T) {
	_, err := load(t, []string{"events"}, map[string]string{"CREDGATE_WEBHOOK_MIN_BACKOFF": "20m"}, "")
	if err == nil {
		t.Fatal("a minimum backoff over the maximum accepted")
	}
	for _, w := range []string{"events.webhook_min_backoff", "environment CREDGATE_WEBHOOK_MIN_BACKOFF", `"20m"`, "events.webhook_max_backoff (10m, default)"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q lacks %q", err, w)
		}
	}
	if _, err := load(t, []string{"events"}, map[string]string{"CREDGATE_WEBHOOK_MIN_BACKOFF": "10m"}, ""); err != nil {
		t.Errorf("equal backoffs: %v", err)
	}
}

func TestAdminAddrCollides(t *testing.T) {
	for _, args := range [][]string{
		{"--admin-addr", ":8080"},
		{"--addr", "127.0.0.1:9000", "--admin-addr", "127.0.0.1:9000"},
		{"--addr", "0.0.0.0:9000", "--admin-addr", "127.0.0.1:9000"},
		{"--addr", "[::]:9000", "--admin-addr", "[::1]:9000"},
	} {
		_, err := load(t, all, nil, "", args...)
		if err == nil || !strings.Contains(err.Error(), "server.admin_addr") || !strings.Contains(err.Error(), "server.addr") {
			t.Errorf("%v: %v", args, err)
		}
	}
	for _, args := range [][]string{
		{"--admin-addr", ":9090"},
		{"--addr", ":0", "--admin-addr", ":0"},
		{"--addr", "127.0.0.1:9000", "--admin-addr", "127.0.0.2:9000"},
		{"--addr", "0.0.0.0:9000", "--admin-addr", "[::1]:9000"},
	} {
		if _, err := load(t, all, nil, "", args...); err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// A stray space (an env file's `KEY=value `) is refused, not kept as part
// of a path or level; a secret's value is not repeated.
func TestSurroundingSpacesRefused(t *testing.T) {
	for k, v := range map[string]string{"CREDGATE_LOG_LEVEL": "info ", "CREDGATE_DATA_DIR": " /d", "CREDGATE_TOKEN_KEY": "hunter2 "} {
		_, err := load(t, all, map[string]string{k: v}, "")
		if err == nil || !strings.Contains(err.Error(), "surrounding spaces") || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s=%q: %v", k, v, err)
		}
	}
}

func TestRedisNegativeDatabase(t *testing.T) {
	_, err := load(t, []string{"redis"}, map[string]string{"CREDGATE_REDIS_URL": "redis://:hunter2@cache:6379/-1"}, "")
	if err == nil || !strings.Contains(err.Error(), "database number is negative") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("negative database: %v", err)
	}
	for _, ok := range []string{"redis://cache:6379/0", "redis://cache:6379/15", "redis://cache:6379/31"} {
		if _, err := load(t, []string{"redis"}, map[string]string{"CREDGATE_REDIS_URL": ok}, ""); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}
