package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"

	"github.com/credgate/credgate/access"
	"github.com/credgate/credgate/adapters/webhook"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/service"
)

// settings is every setting, in the order of defaults.yaml. Values are
// checked with the parsers the wiring itself uses (service.ParseRate,
// access.DecodeSeed, evidence.ValidOrigin, redis.ParseURL), so what passes
// here is what works there.
var settings = []*Setting{
	str("server.addr", "addr", "CREDGATE_ADDR", "listen address, host:port (port 0: any free port)",
		func(c *Config) *string { return &c.Server.Addr }, checkAddr),
	dur("server.shutdown_timeout", "shutdown-timeout", "CREDGATE_SHUTDOWN_TIMEOUT", "how long SIGTERM waits for in-flight requests",
		func(c *Config) *time.Duration { return &c.Server.ShutdownTimeout }, 0, time.Hour),
	str("server.admin_addr", "admin-addr", "CREDGATE_ADMIN_ADDR", "listen address of /metrics, /readyz, /healthz and pprof, host:port; when set they leave the partner port (empty: served on server.addr, without pprof)",
		func(c *Config) *string { return &c.Server.AdminAddr }, optional(checkAddr)),
	boolean("server.bench_noop", "bench-noop", "CREDGATE_BENCH_NOOP", "mount POST /bench/noop, a no-op JSON handler that load runs compare checks with; it marks the server as one for load tests, which credgate bench writes test data into (never in production)",
		func(c *Config) *bool { return &c.Server.BenchNoop }),
	integer("server.checks_in_flight", "checks-in-flight", "CREDGATE_CHECKS_IN_FLIGHT", "checks (single or batch requests) run at once; past it and server.check_queue, a check is answered 503 overloaded with Retry-After",
		func(c *Config) *int { return &c.Server.ChecksInFlight }, 1, 100_000),
	integer("server.check_queue", "check-queue", "CREDGATE_CHECK_QUEUE", "checks that may wait for a slot beyond server.checks_in_flight (0: none wait)",
		func(c *Config) *int { return &c.Server.CheckQueue }, 0, 100_000),
	dur("server.shed_accept_pause", "shed-accept-pause", "CREDGATE_SHED_ACCEPT_PAUSE", "the pause that refusals for capacity at the rate of server.shed_pause_after start, in which no new connection is accepted on server.addr; refusals then close their connection (0: connections kept and accepted as usual)",
		func(c *Config) *time.Duration { return &c.Server.ShedAcceptPause }, 0, time.Minute),
	integer("server.shed_pause_after", "shed-pause-after", "CREDGATE_SHED_PAUSE_AFTER", "refusals for capacity within a tenth of server.shed_accept_pause that start a pause (1: the first)",
		func(c *Config) *int { return &c.Server.ShedPauseAfter }, 1, 1_000_000),
	integer("server.max_connections", "max-connections", "CREDGATE_MAX_CONNECTIONS", "connections held open at once on server.addr; one accepted past it is closed at once, unread",
		func(c *Config) *int { return &c.Server.MaxConnections }, 16, 1_000_000),

	str("store.data_dir", "data-dir", "CREDGATE_DATA_DIR", "directory for the SQLite database, the generated keys and the generated administrator credential",
		func(c *Config) *string { return &c.Store.DataDir }, nonEmpty("a directory path")),
	exposedIn(secret(str("store.postgres_url", "postgres-url", "CREDGATE_POSTGRES_URL", "PostgreSQL URL; when set, data lives there instead of SQLite",
		func(c *Config) *string { return &c.Store.PostgresURL }, optional(checkPostgresURL))), postgresHasPassword),
	dur("store.timeout", "store-timeout", "CREDGATE_STORE_TIMEOUT", "bound on each store read a request waits for (entries behind the cache, partners, records, proofs, keys); a database that does not answer within it is 503 store_unavailable",
		func(c *Config) *time.Duration { return &c.Store.Timeout }, 10*time.Millisecond, time.Minute),
	dur("store.screening_retention", "screening-retention", "CREDGATE_SCREENING_RETENTION", "how long a finished screening job's files (its input, results and answers' tree) are kept in store.screenings_dir; past it the results are 410 screening_expired",
		func(c *Config) *time.Duration { return &c.Store.ScreeningRetention }, time.Hour, 10*365*24*time.Hour),
	str("store.screenings_dir", "screenings-dir", "CREDGATE_SCREENINGS_DIR", "directory of screening jobs' files: input, results, answers' tree (empty: <store.data_dir>/screenings); replicas sharing a database must share this one directory (a ReadWriteMany volume, a compose named volume), or a job's results are served only by the replica that accepted it (503 screening_unavailable from the others)",
		func(c *Config) *string { return &c.Store.ScreeningsDir }, nil),
	integer("store.screenings_max_unfinished", "screenings-max-unfinished", "CREDGATE_SCREENINGS_MAX_UNFINISHED", "screening jobs each partner may have queued, running or uploading at once; one more is 429 too_many_screenings",
		func(c *Config) *int { return &c.Store.ScreeningsMaxUnfinished }, 1, 1000),

	exposedIn(secret(str("redis.url", "redis-url", "CREDGATE_REDIS_URL", "Redis URL shared by the cache tier, the rate limiter and the assertion replay set (empty: none)",
		func(c *Config) *string { return &c.Redis.URL }, optional(checkRedisURL))), redisHasPassword),

	str("cache.prefix", "redis-prefix", "CREDGATE_REDIS_PREFIX", "prefix of the cache tier's Redis keys and channel; replicas of one deployment share it",
		func(c *Config) *string { return &c.Cache.Prefix }, checkPrefix),
	integer("cache.subjects", "cache-subjects", "CREDGATE_CACHE_SUBJECTS", "subjects the in-process cache holds",
		func(c *Config) *int { return &c.Cache.Subjects }, 1, 100_000_000),
	dur("cache.max_staleness", "max-staleness", "CREDGATE_MAX_STALENESS", "staleness bound: an answer resting on entry data older than this is unverifiable",
		func(c *Config) *time.Duration { return &c.Cache.MaxStaleness }, time.Second, 24*time.Hour),
	dur("cache.reconcile", "cache-reconcile", "CREDGATE_CACHE_RECONCILE", "how often the store's change log is read: the bound on a change whose invalidation message was lost; less than half of max_staleness",
		func(c *Config) *time.Duration { return &c.Cache.Reconcile }, 10*time.Millisecond, time.Hour),
	dur("cache.redis_ttl", "cache-redis-ttl", "CREDGATE_CACHE_REDIS_TTL", "expiry of the cache tier's Redis values",
		func(c *Config) *time.Duration { return &c.Cache.RedisTTL }, time.Second, 30*24*time.Hour),
	integer("cache.listed_filter", "cache-listed-filter", "CREDGATE_CACHE_LISTED_FILTER", "subjects named by entries that the in-process listed filter holds, so that a subject no entry names is answered without a read of Redis or the store (about 2.4 bytes each); a store naming more turns it off (0: off)",
		func(c *Config) *int { return &c.Cache.ListedFilter }, 0, 1_000_000_000),

	str("upstream.sources", "sources", "CREDGATE_SOURCES", "JSON file of upstream sources (data feeds, platform APIs) to keep current (empty: none)",
		func(c *Config) *string { return &c.Upstream.Sources }, nil),

	exposedIn(secret(str("evidence.key", "evidence-key", "CREDGATE_EVIDENCE_KEY", "note signer key (PRIVATE+KEY+…) signing evidence checkpoints, or a file holding it; every replica needs the same one (empty: generated into the data dir)",
		func(c *Config) *string { return &c.Evidence.Key }, nil)), holdsSignerKey),
	list("evidence.previous_keys", "evidence-previous-keys", "CREDGATE_EVIDENCE_PREVIOUS_KEYS", "comma-separated verifier keys (name+hash+key, from GET /v1/evidence/keys) of keys that signed this log before a rotation: a start checks the log's latest checkpoint against evidence.key and these",
		func(c *Config) *[]string { return &c.Evidence.PreviousKeys }, checkNoteVerifier),
	str("evidence.origin", "evidence-origin", "CREDGATE_EVIDENCE_ORIGIN", "origin line of the evidence log's checkpoints: a name unique to this deployment, set before the first start",
		func(c *Config) *string { return &c.Evidence.Origin }, checkOrigin),
	str("evidence.previous_origin", "evidence-previous-origin", "CREDGATE_EVIDENCE_PREVIOUS_ORIGIN", "origin this database's log was published under before a deliberate restore started it as a new log (a new evidence.origin and key): its stored checkpoints, verified by evidence.previous_keys, are the old log's and are not served (empty: none)",
		func(c *Config) *string { return &c.Evidence.PreviousOrigin }, optional(checkOrigin)),
	dur("evidence.checkpoint_interval", "checkpoint-interval", "CREDGATE_CHECKPOINT_INTERVAL", "how often a checkpoint is signed while the evidence log grows",
		func(c *Config) *time.Duration { return &c.Evidence.CheckpointInterval }, 10*time.Millisecond, 24*time.Hour),
	boolean("evidence.spool", "spool", "CREDGATE_SPOOL", "when the evidence log cannot commit a check within store.timeout, spool its record locally (fsync'd) with a signed promise of inclusion and integrate it when the database is back; false: such checks fail closed (503)",
		func(c *Config) *bool { return &c.Evidence.Spool }),
	str("evidence.spool_dir", "spool-dir", "CREDGATE_SPOOL_DIR", "this replica's evidence spool directory (empty: <store.data_dir>/spool); one per replica, on local disk",
		func(c *Config) *string { return &c.Evidence.SpoolDir }, nil),
	integer("evidence.spool_max_mb", "spool-max-mb", "CREDGATE_SPOOL_MAX_MB", "size limit of the evidence spool in MiB; past it checks fail closed (503)",
		func(c *Config) *int { return &c.Evidence.SpoolMaxMB }, 1, 1<<20),
	integer("evidence.commits_in_flight", "commits-in-flight", "CREDGATE_COMMITS_IN_FLIGHT", "evidence commits sent before the previous one is acknowledged (PostgreSQL; 1 or 2)",
		func(c *Config) *int { return &c.Evidence.CommitsInFlight }, 1, 2),

	secret(str("access.token_key", "token-key", "CREDGATE_TOKEN_KEY", "base64 Ed25519 seed signing access tokens; every replica needs the same one (empty: generated into the data dir)",
		func(c *Config) *string { return &c.Access.TokenKey }, optional(checkSeed))),
	exposedIn(secret(list("access.token_verify_keys", "token-verify-keys", "CREDGATE_TOKEN_VERIFY_KEYS", "comma-separated keys that verify but do not sign access tokens, during a signing key rotation: base64 Ed25519 seeds, or pub:<base64url public key>",
		func(c *Config) *[]string { return &c.Access.TokenVerifyKeys }, checkVerifyKey)), holdsSeed),
	list("access.token_endpoint_urls", "token-endpoint-url", "CREDGATE_TOKEN_ENDPOINT_URL", "comma-separated public URLs of POST /v1/oauth/token that private_key_jwt assertions may name as aud, besides \"credgate\"",
		func(c *Config) *[]string { return &c.Access.TokenEndpointURLs }, checkAbsoluteURL),
	list("access.trusted_proxies", "trusted-proxies", "CREDGATE_TRUSTED_PROXIES", "comma-separated IPs/CIDRs of reverse proxies whose X-Forwarded-For names the client address used for throttling",
		func(c *Config) *[]string { return &c.Access.TrustedProxies }, checkProxy),
	str("access.rate_limit", "rate-limit", "CREDGATE_RATE_LIMIT", "default request quota per partner, <requests>-<S|M|H|D>; a partner's own rate_limit overrides it",
		func(c *Config) *string { return &c.Access.RateLimit }, checkRate),
	str("access.auth_failure_limit", "auth-failure-limit", "CREDGATE_AUTH_FAILURE_LIMIT", "failed client authentications allowed per address before the token endpoint answers 429, <n>-<S|M|H|D>",
		func(c *Config) *string { return &c.Access.AuthFailureLimit }, checkRate),
	str("access.auth_failure_limit_per_client", "auth-failure-limit-per-client", "CREDGATE_AUTH_FAILURE_LIMIT_PER_CLIENT", "failed client authentications allowed per client id, from any address, <n>-<S|M|H|D>",
		func(c *Config) *string { return &c.Access.AuthFailureLimitPerClient }, checkRate),
	str("access.rate_limit_prefix", "rate-limit-prefix", "CREDGATE_RATE_LIMIT_PREFIX", "Redis key prefix of the shared rate limit counters",
		func(c *Config) *string { return &c.Access.RateLimitPrefix }, checkPrefix),
	str("access.admin_client_id", "", "CREDGATE_ADMIN_CLIENT_ID", "client id of the bootstrap administrator, with admin_client_secret (empty: generated on first start into the data dir)",
		func(c *Config) *string { return &c.Access.AdminClientID }, nil),
	secret(str("access.admin_client_secret", "", "CREDGATE_ADMIN_CLIENT_SECRET", "client secret of the bootstrap administrator, with admin_client_id; never a flag, where other users could read it",
		func(c *Config) *string { return &c.Access.AdminClientSecret }, nil)),

	str("catalog.dir", "catalog", "CREDGATE_CATALOG", "directory of a reviewed catalogue (*.yaml, as credgate catalog export writes it) to apply instead of the embedded one",
		func(c *Config) *string { return &c.Catalog.Dir }, nil),
	str("catalog.holidays", "holidays", "CREDGATE_HOLIDAYS", "YAML file with a calendar section adding the holidays of years the catalogue does not cover",
		func(c *Config) *string { return &c.Catalog.Holidays }, nil),

	str("log.level", "log-level", "CREDGATE_LOG_LEVEL", "least severe level logged: debug, info, warn or error",
		func(c *Config) *string { return &c.Log.Level }, oneOf("debug", "info", "warn", "error")),
	str("log.format", "log-format", "CREDGATE_LOG_FORMAT", "log line format: json or text",
		func(c *Config) *string { return &c.Log.Format }, oneOf("json", "text")),

	str("tracing.exporter", "tracing-exporter", "CREDGATE_TRACING_EXPORTER", "where spans of the check path go: none, otlp-http or otlp-grpc",
		func(c *Config) *string { return &c.Tracing.Exporter }, oneOf("none", "otlp-http", "otlp-grpc")),
	str("tracing.endpoint", "tracing-endpoint", "CREDGATE_TRACING_ENDPOINT", "the OTLP collector's http(s) URL, without credentials (empty: the OTLP default)",
		func(c *Config) *string { return &c.Tracing.Endpoint }, optional(checkTracingEndpoint)),
	ratio("tracing.sample_ratio", "tracing-sample-ratio", "CREDGATE_TRACING_SAMPLE_RATIO", "share of requests traced, from 0 to 1",
		func(c *Config) *float64 { return &c.Tracing.SampleRatio }),

	str("client.url", "url", "CREDGATE_URL", "base URL of the credgate server the command talks to",
		func(c *Config) *string { return &c.Client.URL }, checkHTTPURL),

	dur("events.checked_window", "events-checked-window", "CREDGATE_EVENTS_CHECKED_WINDOW", "how long after a partner's check of a subject the partner is told of the subject's changes",
		func(c *Config) *time.Duration { return &c.Events.CheckedWindow }, time.Hour, 10*365*24*time.Hour),
	dur("events.retention", "events-retention", "CREDGATE_EVENTS_RETENTION", "how long events stay in the pull feed (and deliveries in the log)",
		func(c *Config) *time.Duration { return &c.Events.Retention }, time.Hour, 10*365*24*time.Hour),
	dur("events.interval", "events-interval", "CREDGATE_EVENTS_INTERVAL", "how often the outbox and due webhook deliveries are read",
		func(c *Config) *time.Duration { return &c.Events.Interval }, 10*time.Millisecond, time.Minute),
	dur("events.webhook_timeout", "webhook-timeout", "CREDGATE_WEBHOOK_TIMEOUT", "timeout of one webhook request",
		func(c *Config) *time.Duration { return &c.Events.WebhookTimeout }, 100*time.Millisecond, 5*time.Minute),
	dur("events.webhook_min_backoff", "webhook-min-backoff", "CREDGATE_WEBHOOK_MIN_BACKOFF", "wait after a webhook's first failed attempt, doubled after each further one",
		func(c *Config) *time.Duration { return &c.Events.WebhookMinBackoff }, 10*time.Millisecond, time.Hour),
	dur("events.webhook_max_backoff", "webhook-max-backoff", "CREDGATE_WEBHOOK_MAX_BACKOFF", "longest wait between a webhook's attempts",
		func(c *Config) *time.Duration { return &c.Events.WebhookMaxBackoff }, 10*time.Millisecond, 24*time.Hour),
	integer("events.webhook_max_attempts", "webhook-max-attempts", "CREDGATE_WEBHOOK_MAX_ATTEMPTS", "attempts after which a webhook delivery is dead (an administrator can replay it)",
		func(c *Config) *int { return &c.Events.WebhookMaxAttempts }, 1, 1000),
	list("events.webhook_allow", "webhook-allow", "CREDGATE_WEBHOOK_ALLOW", "comma-separated IPs, CIDRs and host names webhooks may reach although they are not public (loopback, private, link-local …), for receivers inside the network and tests; others are refused when a webhook is set and at every connection",
		func(c *Config) *[]string { return &c.Events.WebhookAllow }, webhook.CheckAllowEntry),
}

// crossCheck validates what no single setting can: combinations. keys
// says which settings were loaded; a combination is checked only when all
// of its settings were.
func (c *Config) crossCheck(loaded func(string) bool) error {
	if loaded("cache.reconcile") && loaded("cache.max_staleness") && c.Cache.Reconcile >= c.Cache.MaxStaleness/2 {
		// Sets are confirmed every reconcile; one older than half the bound
		// is read again, which a slower reconciler would make every hit do.
		return &Error{Key: "cache.reconcile", Origin: c.Origin("cache.reconcile"), Value: c.Cache.Reconcile.String(),
			Err: fmt.Errorf("must be less than half of cache.max_staleness (%s, %s)", c.Cache.MaxStaleness, c.Origin("cache.max_staleness"))}
	}
	if loaded("access.admin_client_id") && loaded("access.admin_client_secret") && (c.Access.AdminClientID == "") != (c.Access.AdminClientSecret == "") {
		key := "access.admin_client_secret"
		if c.Access.AdminClientID == "" {
			key = "access.admin_client_id"
		}
		return &Error{Key: key, Origin: c.Origin(key),
			Err: errors.New("set both access.admin_client_id and access.admin_client_secret (CREDGATE_ADMIN_CLIENT_ID and CREDGATE_ADMIN_CLIENT_SECRET), or neither")}
	}
	if loaded("events.webhook_min_backoff") && loaded("events.webhook_max_backoff") && c.Events.WebhookMinBackoff > c.Events.WebhookMaxBackoff {
		return &Error{Key: "events.webhook_min_backoff", Origin: c.Origin("events.webhook_min_backoff"), Value: short(c.Events.WebhookMinBackoff),
			Err: fmt.Errorf("must not exceed events.webhook_max_backoff (%s, %s)", short(c.Events.WebhookMaxBackoff), c.Origin("events.webhook_max_backoff"))}
	}
	if loaded("server.addr") && loaded("server.admin_addr") && c.Server.AdminAddr != "" && sameListener(c.Server.Addr, c.Server.AdminAddr) {
		return &Error{Key: "server.admin_addr", Origin: c.Origin("server.admin_addr"), Value: c.Server.AdminAddr,
			Err: fmt.Errorf("listens where server.addr (%s, %s) does: the second listener could not start; give the operations endpoints a port of their own, or leave server.admin_addr empty to serve them on server.addr", c.Server.Addr, c.Origin("server.addr"))}
	}
	return nil
}

// sameListener reports whether listeners on a and b (host:port, both
// valid) certainly collide: one port, not 0 (any free port), and one host,
// or one of them every address (empty or ::, which Go listens on for both
// IPv4 and IPv6; 0.0.0.0, every IPv4 one). Names are compared as written.
func sameListener(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	na, _ := strconv.Atoi(pa)
	nb, _ := strconv.Atoi(pb)
	if na == 0 || na != nb {
		return false
	}
	if strings.EqualFold(ha, hb) || ha == "" || hb == "" || ha == "::" || hb == "::" {
		return true
	}
	ipv4 := func(h string) bool { ip, err := netip.ParseAddr(h); return err == nil && ip.Is4() }
	return (ha == "0.0.0.0" && ipv4(hb)) || (hb == "0.0.0.0" && ipv4(ha))
}

// Constructors of settings: each parses the raw text of a value, checks
// it and stores it; errors say what is accepted.

func str(key, flag, env, usage string, field func(*Config) *string, check func(string) error) *Setting {
	return &Setting{Key: key, Flag: flag, Env: env, Usage: usage,
		get: func(c *Config) string { return *field(c) },
		set: func(c *Config, raw string) error {
			if strings.TrimSpace(raw) != raw {
				// A stray space of an env file or a quoted YAML value: not
				// trimmed silently, as it may be a path's or a key's.
				return errors.New("has surrounding spaces; want the value without surrounding spaces")
			}
			if check != nil {
				if err := check(raw); err != nil {
					return err
				}
			}
			*field(c) = raw
			return nil
		}}
}

func dur(key, flag, env, usage string, field func(*Config) *time.Duration, lo, hi time.Duration) *Setting {
	return &Setting{Key: key, Flag: flag, Env: env, Usage: usage,
		get: func(c *Config) string { return short(*field(c)) },
		set: func(c *Config, raw string) error {
			d, err := time.ParseDuration(strings.TrimSpace(raw))
			if err != nil {
				return fmt.Errorf("not a duration; want a number with a unit, such as 500ms, 30s, 2m or 1h30m")
			}
			if d < lo || d > hi {
				return fmt.Errorf("out of range; want %s to %s", short(lo), short(hi))
			}
			*field(c) = d
			return nil
		}}
}

// short renders a duration as an operator writes it: 10m, not 10m0s.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func integer(key, flag, env, usage string, field func(*Config) *int, lo, hi int) *Setting {
	return &Setting{Key: key, Flag: flag, Env: env, Usage: usage,
		get: func(c *Config) string { return strconv.Itoa(*field(c)) },
		set: func(c *Config, raw string) error {
			n, err := strconv.Atoi(strings.TrimSpace(raw))
			if err != nil || n < lo || n > hi {
				return fmt.Errorf("want a whole number from %d to %d", lo, hi)
			}
			*field(c) = n
			return nil
		}}
}

// ratio is a number from 0 to 1.
func ratio(key, flag, env, usage string, field func(*Config) *float64) *Setting {
	return &Setting{Key: key, Flag: flag, Env: env, Usage: usage,
		get: func(c *Config) string { return strconv.FormatFloat(*field(c), 'g', -1, 64) },
		set: func(c *Config, raw string) error {
			f, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
			if err != nil || !(f >= 0 && f <= 1) { // NaN compares false
				return errors.New("want a number from 0 to 1, such as 0.01")
			}
			*field(c) = f
			return nil
		}}
}

// checkTracingEndpoint wants an http(s) URL with a host and no
// credentials: the endpoint is printed by credgate config and logged.
func checkTracingEndpoint(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want an http(s) URL such as http://127.0.0.1:4318")
	}
	if u.User != nil {
		return errors.New("want no credentials in the URL")
	}
	return nil
}

func boolean(key, flag, env, usage string, field func(*Config) *bool) *Setting {
	return &Setting{Key: key, Flag: flag, Env: env, Usage: usage, boolFlag: true,
		get: func(c *Config) string { return strconv.FormatBool(*field(c)) },
		set: func(c *Config, raw string) error {
			b, err := strconv.ParseBool(strings.TrimSpace(raw))
			if err != nil {
				return errors.New("want true or false")
			}
			*field(c) = b
			return nil
		}}
}

// list is a comma-separated value (a YAML sequence in the file); empty
// items are dropped.
func list(key, flag, env, usage string, field func(*Config) *[]string, check func(string) error) *Setting {
	return &Setting{Key: key, Flag: flag, Env: env, Usage: usage,
		get: func(c *Config) string { return strings.Join(*field(c), ",") },
		set: func(c *Config, raw string) error {
			var out []string
			for _, f := range strings.Split(raw, ",") {
				if f = strings.TrimSpace(f); f == "" {
					continue
				}
				if err := check(f); err != nil {
					return fmt.Errorf("item %d: %w", len(out)+1, err)
				}
				out = append(out, f)
			}
			*field(c) = out
			return nil
		}}
}

func secret(s *Setting) *Setting { s.Secret = true; return s }

func optional(check func(string) error) func(string) error {
	return func(v string) error {
		if v == "" {
			return nil
		}
		return check(v)
	}
}

func nonEmpty(what string) func(string) error {
	return func(v string) error {
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("empty; want %s", what)
		}
		return nil
	}
}

func oneOf(values ...string) func(string) error {
	return func(v string) error {
		for _, ok := range values {
			if v == ok {
				return nil
			}
		}
		return fmt.Errorf("want one of %s", strings.Join(values, ", "))
	}
}

func checkAddr(v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return errors.New("want host:port, e.g. :8080 or 127.0.0.1:8080")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return errors.New("want a port from 0 to 65535, e.g. :8080")
	}
	_ = host // any host: a name, an address or empty for every interface
	return nil
}

// checkPostgresURL parses the URL as serve's pool will (pgconn.ParseConfig):
// a port that is not one, an unknown sslmode, say, is refused here, not
// at a start.
func checkPostgresURL(v string) error {
	const want = "want a PostgreSQL URL, postgres://user@host:5432/db, or key=value settings"
	if !strings.Contains(v, "=") && !strings.HasPrefix(v, "postgres://") && !strings.HasPrefix(v, "postgresql://") {
		// pgconn would take any other text as a host name.
		return errors.New(want)
	}
	if _, err := pgconn.ParseConfig(v); err != nil {
		if why := pgconnReason(err, v); why != "" {
			return fmt.Errorf("%s; %s", why, want)
		}
		return errors.New(want)
	}
	return nil
}

// pgconnReason is what ParseConfig found wrong, without the connection
// string it quotes (pgconn replaces the password in it, but the rest —
// user, host — is no business of a log either) and without url.Parse's
// message, which quotes the URL unredacted; empty when what is left might
// still hold part of v's password.
func pgconnReason(err error, v string) string {
	var pe *pgconn.ParseConfigError
	if !errors.As(err, &pe) {
		return ""
	}
	// Error is "cannot parse `<redacted>`: <msg>[ (<cause>)]"; msg is one
	// of pgconn's own phrases.
	full, cause := pe.Error(), pe.Unwrap()
	if cause != nil {
		full = strings.TrimSuffix(full, " ("+cause.Error()+")")
	}
	i := strings.LastIndex(full, "`: ")
	if i < 0 {
		return "" // a shape this does not know
	}
	why := full[i+3:]
	if cause != nil {
		var ue *url.Error
		if errors.As(cause, &ue) {
			cause = ue.Err
		}
		why += ": " + cause.Error()
	}
	for _, pw := range passwordsIn(v) {
		if strings.Contains(why, pw) {
			return ""
		}
	}
	return why
}

// passwordsIn is what in v may be a password: the text between the
// user's colon and the @ of a URL, or after password=.
func passwordsIn(v string) []string {
	var out []string
	if _, rest, ok := strings.Cut(v, "://"); ok {
		if userinfo, _, ok := strings.Cut(rest, "@"); ok {
			if _, pw, ok := strings.Cut(userinfo, ":"); ok && pw != "" {
				out = append(out, pw)
			}
		}
	}
	for _, m := range dsnPasswordValue.FindAllStringSubmatch(v, -1) {
		out = append(out, strings.Trim(m[1], `'"`))
	}
	return out
}

// dsnPasswordValue captures a password= value, of the key=value form or a
// URL's query.
var dsnPasswordValue = regexp.MustCompile(`password\s*=\s*('[^']*'|[^\s&]+)`)

// checkRedisURL parses the URL as serve's client will (redis.ParseURL): a
// database number that is not one, say, is refused here, not at a start.
func checkRedisURL(v string) error {
	o, err := redis.ParseURL(v)
	if err != nil {
		// The URL may hold a password: neither it nor the parser's message,
		// which may quote it, is repeated.
		return errors.New("want a Redis URL, redis://[:password@]host:6379[/db], rediss://… or unix://…")
	}
	if o.DB < 0 {
		// A server's databases are numbered from 0 (how many, 16 by
		// default, is its own setting: only a negative one is certainly
		// wrong).
		return errors.New("the database number is negative; want redis://host:6379/N with N from 0 (16 databases, 0 to 15, unless the server is configured with more)")
	}
	return nil
}

func checkPrefix(v string) error {
	if v == "" || strings.ContainsAny(v, " \t\r\n") {
		return errors.New("want a non-empty key prefix without spaces")
	}
	return nil
}

func checkOrigin(v string) error {
	if err := evidence.ValidOrigin(v); err != nil {
		return errors.New("want a printable name of 1 to 256 characters, without surrounding spaces, e.g. credgate.example.org/evidence")
	}
	return nil
}

func checkNoteVerifier(v string) error {
	if _, err := evidence.Verifiers(v); err != nil {
		return errors.New("want a note verifier key, name+hash+base64 key, as GET /v1/evidence/keys lists it")
	}
	return nil
}

func checkSeed(v string) error {
	if _, err := access.DecodeSeed(v); err != nil {
		return errors.New("want a base64 32-byte Ed25519 seed, e.g. from `head -c32 /dev/urandom | base64`")
	}
	return nil
}

func checkVerifyKey(v string) error {
	if pub, ok := strings.CutPrefix(v, "pub:"); ok {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(pub, "="))
		if err != nil || len(b) != 32 {
			return errors.New("pub: must be followed by a base64url 32-byte Ed25519 public key")
		}
		return nil
	}
	if checkSeed(v) != nil {
		return errors.New("want a base64 32-byte Ed25519 seed or pub:<base64url public key>")
	}
	return nil
}

func checkAbsoluteURL(v string) error {
	if u, err := url.Parse(v); err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL; want e.g. https://credgate.example.org/v1/oauth/token", v)
	}
	return nil
}

func checkHTTPURL(v string) error {
	if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want an http(s) URL, e.g. http://localhost:8080")
	}
	return nil
}

func checkProxy(v string) error {
	if _, err := netip.ParseAddr(v); err == nil {
		return nil
	}
	if _, err := netip.ParsePrefix(v); err == nil {
		return nil
	}
	return fmt.Errorf("%q is neither an IP address nor a CIDR; want e.g. 10.0.0.5 or 10.0.0.0/8", v)
}

func checkRate(v string) error {
	if _, _, err := service.ParseRate(v); err != nil {
		return errors.New("want <requests>-<S|M|H|D> with 1 to 1000000000 requests, e.g. 6000-M")
	}
	return nil
}
