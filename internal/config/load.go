package config

import (
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
)

//go:embed defaults.yaml
var defaultsYAML []byte

// Defaults returns the embedded defaults file.
func Defaults() []byte { return slices.Clone(defaultsYAML) }

// maxFile bounds a configuration file: a complete one is a few KiB.
const maxFile = 1 << 20

// EnvConfig names the configuration file when --config is not given.
const EnvConfig = "CREDGATE_CONFIG"

// Loader fills a Config for one command: it registers the flags of the
// settings the command uses, and after the flags are parsed, Load applies
// defaults, file, environment and flags, in that order.
type Loader struct {
	selected  []*Setting
	lookupEnv func(string) (string, bool)
	// environ lists the environment's variables, for refusing CREDGATE_
	// ones credgate does not read; nil: not checked.
	environ    func() []string
	environSet bool
	warnings   io.Writer // nil: no warnings
	file       string
	flagged    bool // --config was given
	flags      []flagValue
}

type flagValue struct {
	s   *Setting
	raw string
}

// Option configures a Loader.
type Option func(*Loader)

// WithLookupEnv replaces os.LookupEnv (tests). Unless WithEnviron is given
// too, the environment is then not searched for unknown CREDGATE_
// variables: the function cannot list them.
func WithLookupEnv(f func(string) (string, bool)) Option {
	return func(l *Loader) {
		l.lookupEnv = f
		if !l.environSet {
			l.environ = nil
		}
	}
}

// WithEnviron replaces os.Environ, the list of variables searched for
// CREDGATE_ ones credgate does not read (tests).
func WithEnviron(f func() []string) Option {
	return func(l *Loader) { l.environ, l.environSet = f, true }
}

// WithWarnings replaces os.Stderr as where Load warns of secrets given as
// flags (nil: nowhere).
func WithWarnings(w io.Writer) Option {
	return func(l *Loader) { l.warnings = w }
}

// NewLoader returns a loader of the settings named by keys: a section
// ("cache") selects all of its settings, "section.name" one. Settings not
// selected keep their defaults, are not read from the environment and
// get no flag; a file may still set them (one file serves every command),
// and they are validated there.
func NewLoader(keys []string, opts ...Option) *Loader {
	l := &Loader{lookupEnv: os.LookupEnv, environ: os.Environ, warnings: os.Stderr}
	for _, s := range settings {
		section, _, _ := strings.Cut(s.Key, ".")
		if slices.Contains(keys, s.Key) || slices.Contains(keys, section) {
			l.selected = append(l.selected, s)
		}
	}
	for _, o := range opts {
		o(l)
	}
	return l
}

// Register adds --config and the selected settings' flags to fs. Their
// help shows the default and the environment variable.
func (l *Loader) Register(fs *flag.FlagSet) {
	defaults, err := parseDefaults()
	if err != nil {
		panic(err) // the embedded file is checked by the package's tests
	}
	fs.Func("config", "YAML configuration file (env "+EnvConfig+"); flags and environment override it", func(v string) error {
		l.file, l.flagged = v, true
		return nil
	})
	for _, s := range l.selected {
		if s.Flag == "" {
			continue
		}
		v := &recorder{l: l, s: s, def: s.get(defaults)}
		if s.Secret && v.def != "" {
			v.def = "(set)"
		}
		fs.Var(v, s.Flag, fmt.Sprintf("%s (env %s)", s.Usage, s.Env))
	}
}

// recorder keeps a flag's raw text for Load, which parses it in turn after
// the file and the environment, and reports errors the same way for every
// source.
type recorder struct {
	l   *Loader
	s   *Setting
	def string
}

func (r *recorder) String() string {
	if r == nil {
		return ""
	}
	return r.def
}

func (r *recorder) Set(v string) error {
	r.l.flags = append(r.l.flags, flagValue{r.s, v})
	return nil
}

func (r *recorder) IsBoolFlag() bool {
	return r != nil && r.s != nil && r.s.boolFlag
}

// Load builds the configuration. The first refused value stops it with
// an *Error (wrapping ErrInvalid).
func (l *Loader) Load() (*Config, error) {
	cfg, err := parseDefaults()
	if err != nil {
		return nil, err
	}
	if l.environ != nil {
		if err := checkEnviron(l.environ()); err != nil {
			return nil, err
		}
	}
	file, named := l.file, Origin{FromFlag, "config"}
	if !l.flagged {
		if v, ok := l.lookupEnv(EnvConfig); ok {
			file, named = v, Origin{FromEnv, EnvConfig}
		}
	}
	if file != "" {
		data, err := readFile(file)
		if err != nil {
			return nil, &Error{Key: "config", Origin: named, Value: file, Err: err}
		}
		if err := cfg.apply(data, Origin{FromFile, file}); err != nil {
			return nil, err
		}
	}
	for _, s := range l.selected {
		if s.Env == "" {
			continue
		}
		if v, ok := l.lookupEnv(s.Env); ok && v != "" {
			if err := cfg.setFrom(s, v, Origin{FromEnv, s.Env}); err != nil {
				return nil, err
			}
		}
	}
	for _, f := range l.flags {
		if err := cfg.setFrom(f.s, f.raw, Origin{FromFlag, f.s.Flag}); err != nil {
			return nil, err
		}
	}
	loaded := func(key string) bool {
		return slices.ContainsFunc(l.selected, func(s *Setting) bool { return s.Key == key })
	}
	if err := cfg.crossCheck(loaded); err != nil {
		return nil, err
	}
	if l.warnings != nil {
		cfg.warnFlagSecrets(l.warnings, loaded("log.format"))
	}
	return cfg, nil
}

func (c *Config) setFrom(s *Setting, raw string, o Origin) error {
	if err := s.set(c, raw); err != nil {
		e := &Error{Key: s.Key, Origin: o, Err: err}
		if !s.Secret {
			e.Value = raw
		}
		return e
	}
	c.origins[s.Key] = o
	return nil
}

// parseDefaults is the configuration of the embedded defaults file.
func parseDefaults() (*Config, error) {
	c := &Config{origins: map[string]Origin{}}
	if err := c.apply(defaultsYAML, Origin{Source: FromDefault}); err != nil {
		return nil, fmt.Errorf("embedded defaults: %w", err)
	}
	for _, s := range settings {
		c.origins[s.Key] = Origin{Source: FromDefault}
	}
	return c, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the configuration file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the configuration file: %w", err)
	}
	if len(data) > maxFile {
		return nil, fmt.Errorf("larger than %d bytes; want a YAML file of settings", maxFile)
	}
	return data, nil
}

// apply sets the settings a YAML document holds: a mapping of sections, each
// a mapping of settings. Unknown sections and settings are refused, so a
// misspelt key never silently leaves its default in force.
func (c *Config) apply(data []byte, o Origin) error {
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return &Error{Key: "config", Origin: o, Err: fmt.Errorf("not valid YAML: %w", err)}
	}
	for _, section := range sortedKeys(doc) {
		known := sectionKeys(section)
		if len(known) == 0 {
			return &Error{Key: section, Origin: o, Err: fmt.Errorf("unknown section; want one of %s", strings.Join(sections(), ", "))}
		}
		body, ok := doc[section].(map[string]any)
		if !ok {
			if doc[section] == nil {
				continue // an empty section
			}
			return &Error{Key: section, Origin: o, Err: errors.New("want a mapping of settings")}
		}
		for _, name := range sortedKeys(body) {
			key := section + "." + name
			s := lookup(key)
			if s == nil {
				return &Error{Key: key, Origin: o, Err: fmt.Errorf("unknown setting; %s has %s", section, strings.Join(known, ", "))}
			}
			raw, err := scalar(body[name])
			if err != nil {
				return &Error{Key: key, Origin: o, Err: err}
			}
			if err := c.setFrom(s, raw, o); err != nil {
				return err
			}
		}
	}
	return nil
}

// scalar renders a YAML value as the text a flag would hold: a sequence
// becomes a comma-separated list.
func scalar(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case bool, int, int64, uint64, float64:
		return fmt.Sprint(v), nil
	case []any:
		parts := make([]string, 0, len(v))
		for _, item := range v {
			s, err := scalar(item)
			if err != nil {
				return "", err
			}
			if _, isList := item.([]any); isList || strings.Contains(s, ",") {
				return "", errors.New("want a list of single values")
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), nil
	default:
		return "", errors.New("want a single value or a list, not a mapping")
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sections() []string {
	var out []string
	for _, s := range settings {
		section, _, _ := strings.Cut(s.Key, ".")
		if !slices.Contains(out, section) {
			out = append(out, section)
		}
	}
	return out
}

func sectionKeys(section string) []string {
	var out []string
	for _, s := range settings {
		if sec, name, _ := strings.Cut(s.Key, "."); sec == section {
			out = append(out, name)
		}
	}
	return out
}
