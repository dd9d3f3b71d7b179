package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/credgate/credgate/service"
)

// ErrInvalidConfig: a sources file that cannot be used.
var ErrInvalidConfig = errors.New("invalid sources configuration")

// Limits of a sources file.
const (
	maxConfigBytes = 1 << 20
	maxSources     = 100
)

// Duration is a time.Duration written as "90s", "10m", "24h" in JSON.
type Duration time.Duration

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string like \"10m\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("bad duration %q", s)
	}
	*d = Duration(v)
	return nil
}

// fileConfig is the sources file:
//
//	{"sources": [
//	  {"name": "court", "kind": "http", "lists": ["court_dishonest_debtor"],
//	   "url": "https://platform.example/api/dishonest", "headers": {"Authorization": "$COURT_TOKEN"},
//	   "interval": "10m", "max_age": "24h", "timeout": "30s", "retries": 2,
//	   "breaker": {"failures": 3, "open_for": "1m"}, "mapping": {...}},
//	  {"name": "safety", "kind": "file", "lists": ["safety_production_blacklist"],
//	   "dir": "/var/lib/credgate/feeds/safety"}
//	]}
type fileConfig struct {
	Sources []sourceEntry `json:"sources"`
}

type sourceEntry struct {
	Name     string   `json:"name"`
	Kind     string   `json:"kind"`
	Lists    []string `json:"lists"`
	Interval Duration `json:"interval"`
	MaxAge   Duration `json:"max_age"`
	Timeout  Duration `json:"timeout"`
	Retries  *int     `json:"retries"`
	Backoff  Duration `json:"backoff"`
	Breaker  struct {
		Failures uint32   `json:"failures"`
		OpenFor  Duration `json:"open_for"`
	} `json:"breaker"`
	// URL: the API of an http source, or a feed file's URL.
	URL string `json:"url"`
	// Dir: a feed directory (file sources).
	Dir    string `json:"dir"`
	Format string `json:"format"`
	// Headers sent with every request; a value "$NAME" is read from the
	// environment variable NAME, so that tokens stay out of the file.
	Headers  map[string]string `json:"headers"`
	MaxBytes int64             `json:"max_bytes"`
	MaxPages int               `json:"max_pages"`
	Mapping  *Mapping          `json:"mapping"`
}

// LoadConfig reads a sources file (strict JSON: unknown fields are
// errors) and builds the sources it describes. getenv resolves "$NAME"
// header values.
func LoadConfig(r io.Reader, getenv func(string) string) ([]SourceConfig, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxConfigBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxConfigBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidConfig, maxConfigBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var fc fileConfig
	if err := dec.Decode(&fc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if len(fc.Sources) > maxSources {
		return nil, fmt.Errorf("%w: more than %d sources", ErrInvalidConfig, maxSources)
	}
	var out []SourceConfig
	for i, e := range fc.Sources {
		c, err := e.build(getenv)
		if err != nil {
			return nil, fmt.Errorf("%w: sources[%d] (%s): %w", ErrInvalidConfig, i, e.Name, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func (e sourceEntry) build(getenv func(string) string) (SourceConfig, error) {
	c := SourceConfig{
		Name: e.Name, Lists: e.Lists, Interval: time.Duration(e.Interval), MaxAge: time.Duration(e.MaxAge),
		Timeout: time.Duration(e.Timeout), Retries: DefaultRetries, Backoff: time.Duration(e.Backoff),
		BreakerFailures: e.Breaker.Failures, BreakerOpenFor: time.Duration(e.Breaker.OpenFor),
	}
	if e.Retries != nil {
		if *e.Retries < 0 || *e.Retries > MaxRetries {
			return c, fmt.Errorf("retries must be 0-%d", MaxRetries)
		}
		c.Retries = *e.Retries
	}
	var opts []HTTPOption
	for k, v := range e.Headers {
		if name, ok := strings.CutPrefix(v, "$"); ok {
			if v = getenv(name); v == "" {
				return c, fmt.Errorf("header %s: environment variable %s is not set", k, name)
			}
		}
		opts = append(opts, WithHeader(k, v))
	}
	if e.MaxBytes > 0 {
		opts = append(opts, WithMaxBytes(e.MaxBytes))
	}
	if e.MaxPages > 0 {
		opts = append(opts, WithMaxPages(e.MaxPages))
	}
	var err error
	switch e.Kind {
	case "http":
		if e.Dir != "" || e.Format != "" {
			return c, errors.New("an http source has a url and a mapping, not dir or format")
		}
		c.Source, err = NewHTTPSource(e.URL, e.Mapping, opts...)
	case "file":
		if e.Mapping != nil {
			return c, errors.New("a file source uses the import format; it has no mapping")
		}
		switch {
		case (e.Dir == "") == (e.URL == ""):
			return c, errors.New("a file source has a dir or a url")
		case e.Dir != "":
			c.Source, err = NewDirFeed(e.Dir, service.ImportFormat(e.Format), opts...)
		default:
			c.Source, err = NewURLFeed(e.URL, service.ImportFormat(e.Format), opts...)
		}
	default:
		return c, fmt.Errorf("kind %q: want http or file", e.Kind)
	}
	return c, err
}
