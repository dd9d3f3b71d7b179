package config

import (
	"io"
	"log/slog"
	"net/url"
	"regexp"
	"strings"

	"github.com/redis/go-redis/v9"
)

// warnFlagSecrets warns, once for each, of secret settings whose value
// came from a flag: any local user reads a process's arguments (ps,
// /proc/PID/cmdline), and they land in shell histories and unit files.
// The setting and flag are named, never the value. json says to write in
// serve's JSON log format rather than text.
func (c *Config) warnFlagSecrets(w io.Writer, json bool) {
	var logger *slog.Logger
	for _, s := range settings {
		o := c.origins[s.Key]
		if !s.Secret || o.Source != FromFlag {
			continue
		}
		v := s.get(c)
		if v == "" || (s.exposes != nil && !s.exposes(v)) {
			continue
		}
		if logger == nil {
			if json {
				logger = slog.New(slog.NewJSONHandler(w, nil))
			} else {
				logger = slog.New(slog.NewTextHandler(w, nil))
			}
		}
		logger.Warn("a secret setting was given as a flag, which every local user can read in the process list; set it in the environment or the configuration file instead",
			"setting", s.Key, "flag", "--"+s.Flag, "env", s.Env)
	}
}

// exposedIn marks what of a secret setting's value is the secret.
func exposedIn(s *Setting, f func(string) bool) *Setting { s.exposes = f; return s }

// dsnPassword finds a password in libpq's key=value form.
var dsnPassword = regexp.MustCompile(`(?:^|\s)password\s*=\s*\S`)

// postgresHasPassword reports whether a PostgreSQL URL or key=value
// string holds a password (a passfile's name is no secret).
func postgresHasPassword(v string) bool {
	if u, err := url.Parse(v); err == nil && strings.Contains(v, "://") {
		if _, ok := u.User.Password(); ok {
			return true
		}
		return u.Query().Get("password") != ""
	}
	return dsnPassword.MatchString(v)
}

// redisHasPassword reports whether a Redis URL holds a password.
func redisHasPassword(v string) bool {
	o, err := redis.ParseURL(v)
	if err != nil {
		return true // unparsable: assume the worst
	}
	return o.Password != ""
}

// holdsSignerKey reports whether evidence.key is the key itself, not the
// name of a file holding it.
func holdsSignerKey(v string) bool { return strings.Contains(v, "PRIVATE+KEY") }

// holdsSeed reports whether a token_verify_keys list holds a seed, not
// only public keys.
func holdsSeed(v string) bool {
	for _, k := range strings.Split(v, ",") {
		if k = strings.TrimSpace(k); k != "" && !strings.HasPrefix(k, "pub:") {
			return true
		}
	}
	return false
}
