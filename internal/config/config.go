// Package config is credgate's configuration: one struct of per-package
// sections, filled from the embedded defaults (defaults.yaml), then an
// optional YAML file, then the environment (CREDGATE_*), then flags. Every
// value is parsed and validated on the way in; an unparsable or invalid one
// stops the start with an *Error naming the setting, where the value came
// from and what is accepted.
//
// Each setting is declared once, in settings.go: its key in the file, its
// flag, its environment variable, its meaning and its parser. Flags, the
// file's schema, the help text and docs/CONFIGURATION.md (checked by a test)
// all follow from that one table.
package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Config is every setting of credgate, by the package it configures.
type Config struct {
	Server   Server
	Store    Store
	Redis    Redis
	Cache    Cache
	Upstream Upstream
	Evidence Evidence
	Access   Access
	Catalog  Catalog
	Log      Log
	Tracing  Tracing
	Client   Client
	Events   Events

	origins map[string]Origin
}

// Server is the HTTP listener of credgate serve.
type Server struct {
	Addr            string
	ShutdownTimeout time.Duration
	BenchNoop       bool
	// ChecksInFlight and CheckQueue bound the check path (load shedding).
	ChecksInFlight int
	CheckQueue     int
	// MaxConnections bounds the connections open on Addr.
	MaxConnections int
	// ShedAcceptPause: once refusals for capacity are sustained, how long
	// no new connection is accepted (gateway.WithShedAcceptPause).
	ShedAcceptPause time.Duration
	// ShedPauseAfter refusals within a tenth of the pause start one.
	ShedPauseAfter int

	// AdminAddr is the operations listener (metrics, readiness, pprof);
	// empty: those are served on Addr, without pprof.
	AdminAddr string
}

// Store says where credgate keeps its data.
type Store struct {
	DataDir     string
	PostgresURL string // empty: SQLite in DataDir
	// Timeout bounds each store read on a request path.
	Timeout time.Duration
	// ScreeningRetention is how long a finished screening job's files
	// (input, results, tree) are kept in ScreeningsDir.
	ScreeningRetention time.Duration
	// ScreeningsDir holds screening jobs' files (empty:
	// DataDir/screenings): one directory shared by every replica of a
	// database.
	ScreeningsDir string
	// ScreeningsMaxUnfinished caps each partner's screening jobs queued,
	// running or uploading.
	ScreeningsMaxUnfinished int
}

// Redis is serve's one Redis client, shared by the cache tier, the rate
// limiter and the assertion replay set.
type Redis struct {
	URL string // empty: no Redis
}

// Cache is the cache tier in front of the entry store.
type Cache struct {
	Prefix       string
	Subjects     int
	MaxStaleness time.Duration
	Reconcile    time.Duration
	RedisTTL     time.Duration
	// ListedFilter bounds the subjects of the listed filter (0: off).
	ListedFilter int
}

// Upstream is the upstream sources kept current by serve.
type Upstream struct {
	Sources string // JSON file; empty: none
}

// Evidence is how the evidence log's checkpoints are signed.
type Evidence struct {
	Key                string   // a note signer key or a file holding one; empty: generated in the data dir
	PreviousKeys       []string // verifier keys that signed the log before a rotation
	Origin             string
	PreviousOrigin     string // the log's origin before a restore started it as a new log; empty: none
	CheckpointInterval time.Duration
	// Spool: check records the log cannot commit within store.timeout
	// are spooled locally (in SpoolDir; empty: <data_dir>/spool) and
	// integrated later, instead of failing the check.
	Spool      bool
	SpoolDir   string
	SpoolMaxMB int
	// CommitsInFlight: evidence commits sent before the previous one is
	// acknowledged (1 or 2; 2 only pays where PostgreSQL has cores of its
	// own, docs/PERFORMANCE.md).
	CommitsInFlight int
}

// Access is partner access: token keys, quotas, throttles, proxies and the
// bootstrap administrator.
type Access struct {
	TokenKey                  string // base64 Ed25519 seed; empty: generated in the data dir
	TokenVerifyKeys           []string
	TokenEndpointURLs         []string
	TrustedProxies            []string
	RateLimit                 string
	AuthFailureLimit          string
	AuthFailureLimitPerClient string
	RateLimitPrefix           string
	AdminClientID             string
	AdminClientSecret         string
}

// Catalog is the measure catalogue a command applies.
type Catalog struct {
	Dir      string // empty: the embedded catalogue
	Holidays string
}

// Log is serve's structured log.
type Log struct {
	Level  string // debug, info, warn or error
	Format string // json or text
}

// Tracing is OpenTelemetry tracing of the check path (internal/telemetry);
// off unless an exporter is named.
type Tracing struct {
	Exporter    string // none, otlp-http or otlp-grpc
	Endpoint    string // the collector's URL; empty: the OTLP default
	SampleRatio float64
}

// Client is how the command line reaches a running credgate.
type Client struct {
	URL string
}

// Events is push: subscriptions, the event feed and webhook delivery.
type Events struct {
	CheckedWindow      time.Duration
	Retention          time.Duration
	Interval           time.Duration
	WebhookTimeout     time.Duration
	WebhookMinBackoff  time.Duration
	WebhookMaxBackoff  time.Duration
	WebhookMaxAttempts int
	// WebhookAllow: addresses and host names webhooks may reach although
	// they are not public (webhook.ParseAllow).
	WebhookAllow []string
}

// Source is where a setting's value came from.
type Source int

// The sources, in increasing precedence.
const (
	FromDefault Source = iota
	FromFile
	FromEnv
	FromFlag
)

// Origin is where a setting's value came from: the source and its name
// (the file, the variable or the flag).
type Origin struct {
	Source Source
	Name   string
}

func (o Origin) String() string {
	switch o.Source {
	case FromFile:
		return "file " + o.Name
	case FromEnv:
		return "environment " + o.Name
	case FromFlag:
		return "flag --" + o.Name
	default:
		return "default"
	}
}

// Origin says where the setting key (e.g. "cache.max_staleness") got its
// value, for messages about a value that the wiring later finds wrong.
func (c *Config) Origin(key string) Origin { return c.origins[key] }

// Describe names a setting and its origin, for error messages: "catalog.dir
// (flag --catalog)".
func (c *Config) Describe(key string) string {
	return fmt.Sprintf("%s (%s)", key, c.Origin(key))
}

// ErrInvalid is wrapped by every configuration error.
var ErrInvalid = errors.New("invalid configuration")

// Error is a setting whose value was refused.
type Error struct {
	Key    string // the setting, e.g. "cache.max_staleness"
	Origin Origin
	Value  string // empty for secrets: they are never repeated
	Err    error  // what is wrong and what is accepted
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Key)
	b.WriteString(": ")
	if e.Origin.Source != FromDefault || e.Value != "" {
		b.WriteString(e.Origin.String())
		if e.Value != "" {
			fmt.Fprintf(&b, " = %q", e.Value)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() []error { return []error{ErrInvalid, e.Err} }

// Value renders a setting's current value as the file and flags take it;
// secrets are shown as "(set)" or "".
func (c *Config) Value(key string) (string, bool) {
	s := lookup(key)
	if s == nil {
		return "", false
	}
	v := s.get(c)
	if s.Secret && v != "" {
		v = "(set)"
	}
	return v, true
}

// Keys lists every setting's key in the order of the defaults file.
func Keys() []string {
	out := make([]string, len(settings))
	for i, s := range settings {
		out[i] = s.Key
	}
	return out
}

// Setting describes one setting for help and documentation.
type Setting struct {
	Key    string // section.name, as in the file
	Flag   string // without dashes; empty: file and environment only
	Env    string
	Usage  string
	Secret bool // never echoed in messages or by Value

	boolFlag bool // --flag alone means true
	// exposes reports whether a secret setting's value holds the secret
	// itself (a file path or a URL without a password does not); nil: any
	// value but the empty one does.
	exposes func(string) bool

	get func(*Config) string
	set func(*Config, string) error
}

// Settings returns the declarations of every setting.
func Settings() []Setting {
	out := make([]Setting, len(settings))
	for i, s := range settings {
		out[i] = *s
	}
	return out
}

func lookup(key string) *Setting {
	i := slices.IndexFunc(settings, func(s *Setting) bool { return s.Key == key })
	if i < 0 {
		return nil
	}
	return settings[i]
}
