package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/credgate/credgate/access"
	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/cache"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/service"
)

var errUsage = errors.New("usage")

// storeConfig says where credgate keeps its data.
type storeConfig struct {
	dataDir     string
	postgresURL string
}

func (c *storeConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.dataDir, "data-dir", envOr("CREDGATE_DATA_DIR", "./data"), "directory for the SQLite database and generated keys (env CREDGATE_DATA_DIR)")
	fs.StringVar(&c.postgresURL, "postgres-url", os.Getenv("CREDGATE_POSTGRES_URL"), "PostgreSQL URL; when set, data lives there instead of SQLite (env CREDGATE_POSTGRES_URL)")
}

// store is what credgate needs of its database: everything it keeps
// (service.Store), the change log the cache tier reconciles from, and the
// upstream sources' state. Both adapters provide all of it, checked here
// at compile time, so serve wires them without asking.
type store interface {
	service.Store
	cache.ChangeFeed
	service.SourceStore
}

var (
	_ store = (*sqlite.Store)(nil)
	_ store = (*postgres.Store)(nil)
)

// open opens the configured store.
func (c *storeConfig) open(ctx context.Context) (store, string, error) {
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return nil, "", fmt.Errorf("data dir: %w", err)
	}
	if c.postgresURL != "" {
		st, err := postgres.Open(ctx, c.postgresURL)
		if err != nil {
			return nil, "", fmt.Errorf("open PostgreSQL: %w", err)
		}
		return st, "postgres", nil
	}
	st, err := sqlite.Open(ctx, c.dataDir)
	if err != nil {
		return nil, "", fmt.Errorf("open SQLite in %s: %w", c.dataDir, err)
	}
	return st, "sqlite", nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

type serveConfig struct {
	store           storeConfig
	addr            string
	redisURL        string
	tokenKey        string
	shutdownTimeout time.Duration
	benchNoop       bool
	evidence        evidenceConfig
	access          accessConfig  // serve_access.go
	cache           cacheConfig   // serve_cache.go
	catalog         catalogConfig // serve_catalog.go
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.store.register(fs)
	cfg.evidence.register(fs)
	fs.StringVar(&cfg.addr, "addr", envOr("CREDGATE_ADDR", ":8080"), "listen address (env CREDGATE_ADDR)")
	fs.StringVar(&cfg.redisURL, "redis-url", os.Getenv("CREDGATE_REDIS_URL"), "Redis URL shared by the cache tier and the rate limiter (env CREDGATE_REDIS_URL)")
	fs.StringVar(&cfg.tokenKey, "token-key", os.Getenv("CREDGATE_TOKEN_KEY"), "base64 Ed25519 seed signing access tokens; every replica needs the same one (env CREDGATE_TOKEN_KEY; default: generated into the data dir)")
	fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long SIGTERM waits for in-flight requests")
	fs.BoolVar(&cfg.benchNoop, "bench-noop", false, "mount POST /bench/noop, a no-op JSON handler that load runs compare checks with")
	cfg.access.register(fs)
	cfg.cache.register(fs)
	cfg.catalog.register(fs)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	// The logger is passed down, never installed as the process default:
	// serve also runs inside tests, beside other servers.
	logger := slog.New(slog.NewJSONHandler(stderr, nil))

	// The catalogue is read and validated before anything is written.
	cat, err := cfg.catalog.load()
	if err != nil {
		return err
	}
	st, kind, err := cfg.store.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	// One Redis client, shared by the cache tier and the rate limiter,
	// closed after both.
	rdb, err := openRedis(cfg.redisURL)
	if err != nil {
		return err
	}
	if rdb != nil {
		defer rdb.Close()
	}
	// The cache tier (and the upstream sources feeding the store) stops
	// before the store closes.
	caching, err := cfg.cache.start(ctx, st, cat, rdb, logger)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	defer caching.close()
	key, err := loadTokenKey(cfg.tokenKey, cfg.store.dataDir)
	if err != nil {
		return err
	}
	signer, err := cfg.evidence.signer(cfg.store.dataDir, logger)
	if err != nil {
		return err
	}
	evlog := evidence.NewLog(st, signer, evidence.WithCheckpointInterval(cfg.evidence.interval), evidence.WithLogger(logger))
	stopLog, err := startEvidenceLog(ctx, st, evlog, logger)
	if err != nil {
		return err
	}
	defer stopLog() // before the store closes
	appender := evidence.NewAppender(st)
	// Checks read through the cache tier; answers as of a past time read
	// the store's entry history, never a cache.
	checker := service.NewChecker(cat, caching.tier, appender, st,
		append([]service.CheckerOption{service.WithHistory(st)}, caching.checker...)...)
	// Administrative acts go through the same appender as checks.
	audit := service.NewAudit(appender)
	entries := service.NewEntries(st, cat, append([]service.EntriesOption{service.WithEntriesAudit(audit)}, caching.entries...)...)
	partners := service.NewPartners(st, cat, service.WithPartnersAudit(audit))
	tokenOpts, err := cfg.access.tokenOptions()
	if err != nil {
		appender.Close()
		return err
	}
	tokens := access.NewTokens(key, tokenOpts...)
	if err := recordCatalogLoaded(ctx, audit, cat); err != nil {
		appender.Close()
		return err
	}

	adminID, _, _, err := bootstrapAdmin(ctx, partners, cfg.store.dataDir, logger)
	if err != nil {
		return err
	}

	opts := []gateway.Option{gateway.WithLogger(logger), gateway.WithReadiness(kind, st), gateway.WithEvidence(evlog, service.NewReceipts(st, evlog))}
	// Objections, repairs, exits and violation records share the entry
	// service's clock, audit and change hook (caches invalidate on them).
	opts = append(opts, gateway.WithLifecycle(service.NewLifecycle(entries, st)))
	accessOpts, err := cfg.access.gatewayOptions(rdb, logger)
	if err != nil {
		appender.Close()
		return err
	}
	opts = append(opts, accessOpts...)
	opts = append(opts, gateway.WithActs(service.NewActs(st)))
	opts = append(opts, caching.gateway...)
	if cfg.benchNoop {
		opts = append(opts, gateway.WithNoopEndpoint())
	}
	srv := &http.Server{
		Handler:           gateway.New(checker, entries, partners, tokens, opts...).Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	logger.Info("credgate serving", "addr", ln.Addr().String(), "store", kind, "catalog_revision", cat.Revision(),
		"catalog_origin", cat.Origin(), "calendar_years", cat.Calendar().Covered(), "measures", len(cat.Measures()))
	printWelcome(stdout, ln.Addr().String(), adminID, cfg.store.dataDir)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		appender.Close()
		return err
	case <-ctx.Done():
	}
	logger.Info("draining in-flight requests", "timeout", cfg.shutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	// Every answered check is already committed; Close commits what is
	// still queued from requests that were cut off.
	appender.Close()
	logger.Info("stopped")
	return err
}

// loadTokenKey returns the token signing key from the flag/environment, or
// from the data dir, generating it there on first start.
func loadTokenKey(configured, dataDir string) (ed25519.PrivateKey, error) {
	if configured != "" {
		return access.DecodeSeed(configured)
	}
	path := filepath.Join(dataDir, "token-signing.key")
	if b, err := os.ReadFile(path); err == nil {
		return access.DecodeSeed(string(b))
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	if err := writeSecretFile(path, []byte(base64.StdEncoding.EncodeToString(seed)+"\n")); err != nil {
		return nil, fmt.Errorf("write token key: %w", err)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// writeSecretFile creates path with mode 0600, failing if it exists.
func writeSecretFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

const adminCredentialsFile = "admin-credentials.json"

// bootstrapAdmin makes sure an administrator exists: the one named by
// CREDGATE_ADMIN_CLIENT_ID/SECRET, or else one generated on first start and
// written to a 0600 file in the data dir. The secret is never logged.
func bootstrapAdmin(ctx context.Context, partners *service.Partners, dataDir string, logger *slog.Logger) (id, secret string, created bool, err error) {
	id, secret = os.Getenv("CREDGATE_ADMIN_CLIENT_ID"), os.Getenv("CREDGATE_ADMIN_CLIENT_SECRET")
	if (id == "") != (secret == "") {
		return "", "", false, errors.New("set both CREDGATE_ADMIN_CLIENT_ID and CREDGATE_ADMIN_CLIENT_SECRET, or neither")
	}
	path := filepath.Join(dataDir, adminCredentialsFile)
	if id == "" {
		var saved struct {
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		}
		if b, err := os.ReadFile(path); err == nil {
			if err := json.Unmarshal(b, &saved); err != nil {
				return "", "", false, fmt.Errorf("%s: %w", path, err)
			}
			id, secret = saved.ClientID, saved.ClientSecret
		} else {
			id = "admin"
			if secret, err = access.NewSecret(); err != nil {
				return "", "", false, err
			}
			saved.ClientID, saved.ClientSecret = id, secret
			b, _ := json.MarshalIndent(saved, "", "  ")
			if err := writeSecretFile(path, append(b, '\n')); err != nil {
				return "", "", false, fmt.Errorf("write admin credentials: %w", err)
			}
			logger.Info("generated the bootstrap administrator's credentials", "file", path)
		}
	}
	created, err = partners.EnsureAdmin(ctx, id, secret)
	if err != nil {
		return "", "", false, fmt.Errorf("bootstrap administrator: %w", err)
	}
	return id, secret, created, nil
}

// printWelcome tells the operator how to get a token, without the secret.
func printWelcome(w io.Writer, addr, adminID, dataDir string) {
	host := addr
	if strings.HasPrefix(host, "[::]:") || strings.HasPrefix(host, "0.0.0.0:") || strings.HasPrefix(host, ":") {
		host = "localhost:" + host[strings.LastIndex(host, ":")+1:]
	}
	secretHint := "$CREDGATE_ADMIN_CLIENT_SECRET"
	if os.Getenv("CREDGATE_ADMIN_CLIENT_SECRET") == "" {
		secretHint = fmt.Sprintf("$(jq -r .client_secret %s)", filepath.Join(dataDir, adminCredentialsFile))
	}
	fmt.Fprintf(w, `credgate is listening on http://%s
Get an administrator token:
  curl -s -u %s:%s -d grant_type=client_credentials http://%s/v1/oauth/token
`, host, adminID, secretHint, host)
}
