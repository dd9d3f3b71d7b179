package config

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/credgate/credgate/cache"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/service"
)

// load runs a loader of keys over args, env and an optional file body.
func load(t *testing.T, keys []string, env map[string]string, file string, args ...string) (*Config, error) {
	t.Helper()
	if file != "" {
		path := filepath.Join(t.TempDir(), "credgate.yaml")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append([]string{"--config", path}, args...)
	}
	l := NewLoader(keys, WithLookupEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	l.Register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return l.Load()
}

var all = []string{"server", "store", "redis", "cache", "upstream", "evidence", "access", "catalog", "log", "client"}

func TestDefaultsFileHasEverySettingOnce(t *testing.T) {
	var doc map[string]map[string]any
	if err := yaml.Unmarshal(defaultsYAML, &doc); err != nil {
		t.Fatal(err)
	}
	var inFile []string
	for section, body := range doc {
		for name := range body {
			inFile = append(inFile, section+"."+name)
		}
	}
	slices.Sort(inFile)
	keys := Keys()
	slices.Sort(keys)
	if !slices.Equal(inFile, keys) {
		t.Fatalf("defaults.yaml holds %v\nsettings are       %v", inFile, keys)
	}
	flags, envs := map[string]bool{}, map[string]bool{}
	for _, s := range Settings() {
		if s.Env == "" || !strings.HasPrefix(s.Env, "CREDGATE_") || envs[s.Env] || (s.Flag != "" && flags[s.Flag]) {
			t.Errorf("%s: env %q flag %q: every setting needs its own CREDGATE_ variable and flag", s.Key, s.Env, s.Flag)
		}
		flags[s.Flag], envs[s.Env] = true, true
	}
}

// The defaults file agrees with the packages' own defaults, which their
// constructors apply when no option is given.
func TestDefaultsMatchPackages(t *testing.T) {
	c, err := load(t, all, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Server: Server{Addr: ":8080", ShutdownTimeout: 30 * time.Second, ChecksInFlight: gateway.DefaultChecksInFlight, CheckQueue: gateway.DefaultCheckQueue,
			MaxConnections: gateway.DefaultMaxConnections, ShedAcceptPause: gateway.DefaultShedAcceptPause,
			ShedPauseAfter: gateway.DefaultShedPauseAfter},
		Store: Store{DataDir: "./data", Timeout: service.DefaultStoreTimeout, ScreeningRetention: service.DefaultScreeningRetention,
			ScreeningsMaxUnfinished: service.DefaultMaxUnfinishedScreenings},
		Cache: Cache{Prefix: cache.DefaultPrefix, Subjects: cache.DefaultMaxSubjects, MaxStaleness: cache.DefaultMaxStaleness, Reconcile: cache.DefaultReconcile, RedisTTL: cache.DefaultRedisTTL, ListedFilter: cache.DefaultListedMax},
		Evidence: Evidence{Origin: "credgate.local/evidence", CheckpointInterval: time.Second,
			Spool: true, SpoolMaxMB: evidence.DefaultSpoolMaxBytes >> 20, CommitsInFlight: evidence.DefaultCommitsInFlight},
		Access: Access{RateLimit: gateway.DefaultRateLimit, AuthFailureLimit: gateway.DefaultAuthFailuresPerAddress,
			AuthFailureLimitPerClient: gateway.DefaultAuthFailuresPerClient, RateLimitPrefix: "credgate:ratelimit"},
		Log:     Log{Level: "info", Format: "json"},
		Tracing: Tracing{Exporter: "none", SampleRatio: 1},
		Client:  Client{URL: "http://localhost:8080"},
		Events: Events{CheckedWindow: service.DefaultCheckedWindow, Retention: service.DefaultEventRetention,
			Interval: service.DefaultEventsInterval, WebhookTimeout: service.DefaultWebhookTimeout,
			WebhookMinBackoff: service.DefaultWebhookMinBackoff, WebhookMaxBackoff: service.DefaultWebhookMaxBackoff,
			WebhookMaxAttempts: service.DefaultWebhookMaxAttempts},
	}
	got := *c
	got.origins = nil
	if !equalConfig(got, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", got, want)
	}
	if o := c.Origin("cache.max_staleness"); o.Source != FromDefault || o.String() != "default" {
		t.Fatalf("origin of a default: %v", o)
	}
}

func equalConfig(a, b Config) bool {
	// Lists: nil and empty are the same setting.
	norm := func(c *Config) {
		for _, l := range []*[]string{&c.Evidence.PreviousKeys, &c.Access.TokenVerifyKeys, &c.Access.TokenEndpointURLs, &c.Access.TrustedProxies} {
			if len(*l) == 0 {
				*l = nil
			}
		}
	}
	norm(&a)
	norm(&b)
	return strings.EqualFold(strings.TrimSpace(yamlOf(a)), strings.TrimSpace(yamlOf(b)))
}

func yamlOf(c Config) string {
	b, err := yaml.Marshal(c)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestPrecedenceDefaultFileEnvFlag(t *testing.T) {
	file := "cache:\n  max_staleness: 40s\n  reconcile: 3s\n  subjects: 500\nserver:\n  addr: 127.0.0.1:9000\naccess:\n  trusted_proxies: [10.0.0.1, 10.1.0.0/16]\n"
	env := map[string]string{"CREDGATE_MAX_STALENESS": "50s", "CREDGATE_CACHE_SUBJECTS": "600"}
	c, err := load(t, all, env, file, "--max-staleness", "1m")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		key, want string
		source    Source
	}{
		{"cache.max_staleness", "1m", FromFlag},                      // flag over env over file
		{"cache.subjects", "600", FromEnv},                           // env over file
		{"cache.reconcile", "3s", FromFile},                          // file over default
		{"server.addr", "127.0.0.1:9000", FromFile},                  //
		{"access.trusted_proxies", "10.0.0.1,10.1.0.0/16", FromFile}, // a YAML list
		{"cache.redis_ttl", "10m", FromDefault},
	}
	for _, ck := range checks {
		v, _ := c.Value(ck.key)
		if v != ck.want || c.Origin(ck.key).Source != ck.source {
			t.Errorf("%s = %q from %v, want %q from %v", ck.key, v, c.Origin(ck.key), ck.want, ck.source)
		}
	}
	if c.Cache.MaxStaleness != time.Minute || c.Cache.Subjects != 600 || len(c.Access.TrustedProxies) != 2 {
		t.Fatalf("typed values: %+v %+v", c.Cache, c.Access)
	}
	// CREDGATE_CONFIG names the file when --config does not, and --config wins.
	path := filepath.Join(t.TempDir(), "env.yaml")
	if err := os.WriteFile(path, []byte("log:\n  level: debug\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = load(t, all, map[string]string{EnvConfig: path}, "")
	if err != nil || c.Log.Level != "debug" || c.Origin("log.level") != (Origin{FromFile, path}) {
		t.Fatalf("CREDGATE_CONFIG: %v %+v", err, c)
	}
	c, err = load(t, all, map[string]string{EnvConfig: path}, "log:\n  format: text\n")
	if err != nil || c.Log.Level != "info" || c.Log.Format != "text" {
		t.Fatalf("--config over CREDGATE_CONFIG: %v %+v", err, c.Log)
	}
}

func TestBoolFlagAlone(t *testing.T) {
	c, err := load(t, all, nil, "", "--bench-noop")
	if err != nil || !c.Server.BenchNoop {
		t.Fatalf("--bench-noop: %v %+v", err, c.Server)
	}
	c, err = load(t, all, map[string]string{"CREDGATE_BENCH_NOOP": "true"}, "", "--bench-noop=false")
	if err != nil || c.Server.BenchNoop {
		t.Fatalf("--bench-noop=false over env: %v %+v", err, c.Server)
	}
}

// Every source's bad value stops the load with the setting, the source,
// the value and what is accepted.
func TestRefusesBadValues(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		file string
		args []string
		want []string
	}{
		{name: "env duration (once silently ignored)", env: map[string]string{"CREDGATE_MAX_STALENESS": "abc"},
			want: []string{"cache.max_staleness", "environment CREDGATE_MAX_STALENESS", `"abc"`, "want a number with a unit"}},
		{name: "flag duration", args: []string{"--cache-reconcile", "5"},
			want: []string{"cache.reconcile", "flag --cache-reconcile", `"5"`, "such as 500ms"}},
		{name: "file duration", file: "cache:\n  redis_ttl: forever\n",
			want: []string{"cache.redis_ttl", "file ", `"forever"`, "not a duration"}},
		{name: "out of range", args: []string{"--max-staleness", "0s"},
			want: []string{"cache.max_staleness", "out of range", "want 1s to 24h"}},
		{name: "integer", env: map[string]string{"CREDGATE_CACHE_SUBJECTS": "lots"},
			want: []string{"cache.subjects", "CREDGATE_CACHE_SUBJECTS", "want a whole number from 1"}},
		{name: "bool", env: map[string]string{"CREDGATE_BENCH_NOOP": "sure"}, want: []string{"server.bench_noop", "want true or false"}},
		{name: "addr", args: []string{"--addr", "8080"}, want: []string{"server.addr", "flag --addr", "want host:port"}},
		{name: "rate", file: "access:\n  rate_limit: 100/min\n", want: []string{"access.rate_limit", "file ", "<requests>-<S|M|H|D>"}},
		{name: "proxy", env: map[string]string{"CREDGATE_TRUSTED_PROXIES": "10.0.0.1,proxy.local"},
			want: []string{"access.trusted_proxies", "item 2", "neither an IP address nor a CIDR"}},
		{name: "endpoint url", args: []string{"--token-endpoint-url", "/v1/oauth/token"}, want: []string{"access.token_endpoint_urls", "not an absolute URL"}},
		{name: "origin", env: map[string]string{"CREDGATE_EVIDENCE_ORIGIN": " padded "}, want: []string{"evidence.origin", "without surrounding spaces"}},
		{name: "log level", args: []string{"--log-level", "loud"}, want: []string{"log.level", "want one of debug, info, warn, error"}},
		{name: "client url", env: map[string]string{"CREDGATE_URL": "localhost:8080"}, want: []string{"client.url", "want an http(s) URL"}},
		// serve's Redis client refused it at the start, after config had passed it.
		{name: "redis db", env: map[string]string{"CREDGATE_REDIS_URL": "redis://127.0.0.1:6379/zz"}, want: []string{"redis.url", "CREDGATE_REDIS_URL", "want a Redis URL"}},
		{name: "unknown setting", file: "cache:\n  max_stalenes: 10s\n", want: []string{"cache.max_stalenes", "unknown setting", "max_staleness"}},
		{name: "unknown section", file: "caches:\n  x: 1\n", want: []string{"caches", "unknown section", "cache"}},
		{name: "mapping for a value", file: "server:\n  addr:\n    host: x\n", want: []string{"server.addr", "not a mapping"}},
		{name: "not YAML", file: "server: [\n", want: []string{"not valid YAML"}},
		{name: "reconcile vs staleness", args: []string{"--cache-reconcile", "20s"},
			want: []string{"cache.reconcile", "flag --cache-reconcile", "less than half of cache.max_staleness (30s, default)"}},
		{name: "admin id without secret", env: map[string]string{"CREDGATE_ADMIN_CLIENT_ID": "root"},
			want: []string{"access.admin_client_secret", "set both"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, all, tc.env, tc.file, tc.args...)
			if err == nil {
				t.Fatal("accepted")
			}
			var ce *Error
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &ce) {
				t.Fatalf("not a config error: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
		})
	}
	// A missing file is named, with the source that named it.
	if _, err := load(t, all, nil, "", "--config", "/nonexistent/credgate.yaml"); err == nil || !strings.Contains(err.Error(), `flag --config = "/nonexistent/credgate.yaml"`) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := load(t, all, map[string]string{EnvConfig: "/nonexistent/env.yaml"}, ""); err == nil || !strings.Contains(err.Error(), `environment CREDGATE_CONFIG = "/nonexistent/env.yaml"`) {
		t.Fatalf("missing file: %v", err)
	}
}

// Secret values are never repeated in messages.
func TestSecretsNotEchoed(t *testing.T) {
	for _, tc := range []struct{ env, value string }{
		{"CREDGATE_POSTGRES_URL", "mysql://root:hunter2@db/x"},
		{"CREDGATE_REDIS_URL", "http://:hunter2@cache"},
		{"CREDGATE_REDIS_URL", "redis://:hunter2@cache/hunter2"},
		{"CREDGATE_TOKEN_KEY", "hunter2"},
		{"CREDGATE_TOKEN_VERIFY_KEYS", "hunter2"},
	} {
		_, err := load(t, all, map[string]string{tc.env: tc.value}, "")
		if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), tc.env) {
			t.Errorf("%s: %v", tc.env, err)
		}
	}
	c, err := load(t, all, map[string]string{"CREDGATE_ADMIN_CLIENT_ID": "root", "CREDGATE_ADMIN_CLIENT_SECRET": "hunter2"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := c.Value("access.admin_client_secret"); v != "(set)" || c.Access.AdminClientSecret != "hunter2" {
		t.Fatalf("secret shown as %q", v)
	}
}

// A command loads only its settings from the environment: a bad variable
// of serve does not stop a client command, and it gets no serve flags.
func TestSelection(t *testing.T) {
	l := NewLoader([]string{"client", "store.data_dir"}, WithLookupEnv(func(k string) (string, bool) {
		v, ok := map[string]string{"CREDGATE_MAX_STALENESS": "abc", "CREDGATE_URL": "http://h:1", "CREDGATE_DATA_DIR": "/d"}[k]
		return v, ok
	}))
	fs := flag.NewFlagSet("partners", flag.ContinueOnError)
	l.Register(fs)
	if fs.Lookup("max-staleness") != nil || fs.Lookup("postgres-url") != nil || fs.Lookup("url") == nil || fs.Lookup("data-dir") == nil {
		t.Fatal("flags of unselected settings registered, or selected ones missing")
	}
	c, err := l.Load()
	if err != nil || c.Client.URL != "http://h:1" || c.Store.DataDir != "/d" || c.Cache.MaxStaleness != 30*time.Second {
		t.Fatalf("%v %+v", err, c)
	}
}

func TestHelpShowsDefaultAndEnv(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var b strings.Builder
	fs.SetOutput(&b)
	NewLoader(all).Register(fs)
	fs.PrintDefaults()
	for _, w := range []string{"-max-staleness", "(env CREDGATE_MAX_STALENESS)", "(default 30s)", "-config", "CREDGATE_CONFIG"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("help lacks %q", w)
		}
	}
	if strings.Contains(b.String(), "admin-client-secret") {
		t.Error("a secret became a flag")
	}
}

// docs/CONFIGURATION.md has a row for every setting, with its flag, its
// variable and its default.
func TestEverySettingDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/CONFIGURATION.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		key := strings.Trim(strings.TrimSpace(strings.Split(line, "|")[1]), "`")
		rows[key] = line
	}
	defaults, err := parseDefaults()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Settings() {
		row, ok := rows[s.Key]
		if !ok {
			t.Errorf("docs/CONFIGURATION.md has no row for %s", s.Key)
			continue
		}
		if !strings.Contains(row, "`"+s.Env+"`") {
			t.Errorf("%s: row lacks `%s`", s.Key, s.Env)
		}
		if s.Flag != "" && !strings.Contains(row, "`--"+s.Flag+"`") {
			t.Errorf("%s: row lacks `--%s`", s.Key, s.Flag)
		}
		if def := s.get(defaults); def != "" && !s.Secret && !strings.Contains(row, "`"+def+"`") {
			t.Errorf("%s: row lacks the default `%s`", s.Key, def)
		}
	}
	for key := range rows {
		if lookup(key) == nil {
			t.Errorf("docs/CONFIGURATION.md documents %s, which is no setting", key)
		}
	}
}

// No flag's help holds a backquote: the flag package would take the quoted
// words for the name of the flag's argument (flag.UnquoteUsage), as once
// "-catalog credgate catalog export".
func TestFlagHelpNamesNoArgument(t *testing.T) {
	fs := flag.NewFlagSet("all", flag.ContinueOnError)
	NewLoader(Keys()).Register(fs)
	fs.VisitAll(func(f *flag.Flag) {
		if name, _ := flag.UnquoteUsage(f); name != "value" && name != "" {
			t.Errorf("--%s shows %q as its argument: %s", f.Name, name, f.Usage)
		}
	})
}
