package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/credgate/credgate/access"
	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/adapters/sqlite"
	"github.com/credgate/credgate/adapters/upstream"
	"github.com/credgate/credgate/cache"
	"github.com/credgate/credgate/console"
	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/config"
	"github.com/credgate/credgate/internal/telemetry"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// store is what credgate needs of its database: everything it keeps
// (service.Store), the change log the cache tier reconciles from, and the
// upstream sources' state. Both adapters provide all of it, checked here
// at compile time, so serve wires them without asking.
type store interface {
	service.Store
	// AppendLeaves: the evidence commit with the leaves hashed beforehand.
	evidence.LeafSink
	cache.ChangeFeed
	cache.ChangeNotifier
	cache.ListedSource
	service.SourceStore
	service.FollowUpStore
	service.PushStore
}

var (
	_ store = (*sqlite.Store)(nil)
	_ store = (*postgres.Store)(nil)
)

// boundedStore is a store whose reads on request paths are bounded
// (service.BoundedStore, store.timeout); the change feed and its notices,
// the sources' state and the listed subjects are read by background loops,
// which have their own retries and bounds.
type boundedStore struct {
	*service.BoundedStore
	cache.ChangeFeed
	cache.ChangeNotifier
	cache.ListedSource
	service.SourceStore
	service.FollowUpStore
	service.PushStore
}

// bound wraps st so that no request waits on it longer than timeout.
func bound(st store, timeout time.Duration) store {
	return boundedStore{BoundedStore: service.NewBoundedStore(st, service.WithStoreTimeout(timeout)), ChangeFeed: st, ChangeNotifier: st, ListedSource: st, SourceStore: st, FollowUpStore: st, PushStore: st}
}

// openStore opens the configured store; closeStore closes it (and frees
// the data dir). Only SQLite needs the data dir, so only SQLite creates
// it, and, for serve (lock), locks it first: one server per SQLite
// database, or two would each sign the evidence log as if alone. import
// does not lock: it may write beside a running server (SQLite serialises
// the writers, and the server's checkpointer signs what it adds). opts
// configure a SQLite store.
func openStore(ctx context.Context, c config.Store, lock bool, opts ...sqlite.Option) (st store, kind string, closeStore func(), err error) {
	return openStoreNoted(ctx, c, lock, nil, opts...)
}

// openStoreNoted is openStore for serve: ledger (nil: none) is told what
// the open creates — the data dir, its lock file, the database — and
// closeStore settles it after the database is closed and before the lock
// is released (startLedger.settle), as does a failure of the open itself.
func openStoreNoted(ctx context.Context, c config.Store, lock bool, ledger *startLedger, opts ...sqlite.Option) (st store, kind string, closeStore func(), err error) {
	if c.PostgresURL != "" {
		pg, err := postgres.Open(ctx, c.PostgresURL)
		if err != nil {
			return nil, "", nil, fmt.Errorf("open PostgreSQL (store.postgres_url): %w", err)
		}
		return pg, "postgres", func() { pg.Close(); ledger.settle() }, nil
	}
	ledger.absentDir(c.DataDir)
	failed := func(dirLock *sqlite.DirLock) {
		ledger.fail()
		ledger.settle()
		dirLock.Release()
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		failed(nil)
		return nil, "", nil, fmt.Errorf("data dir (store.data_dir): %w", err)
	}
	var dirLock *sqlite.DirLock // nil unless lock: Release is then a no-op
	if lock {
		// A lock file that another holder has was there already: the
		// ledger notes only one this start creates.
		ledger.absent(filepath.Join(c.DataDir, sqlite.LockFileName))
		dirLock, err = sqlite.LockDataDir(c.DataDir)
		if errors.Is(err, sqlite.ErrDataDirLocked) {
			return nil, "", nil, fmt.Errorf("%w; stop that credgate first, or give this one another --data-dir (CREDGATE_DATA_DIR); replicas that share data need PostgreSQL (--postgres-url)", err)
		}
		if err != nil {
			failed(nil)
			return nil, "", nil, fmt.Errorf("data dir (store.data_dir): %w", err)
		}
	}
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		if ledger.absent(filepath.Join(c.DataDir, sqlite.FileName+suffix)) && suffix == "" {
			ledger.freshDB = true
		}
	}
	lite, err := sqlite.Open(ctx, c.DataDir, opts...)
	if err != nil {
		failed(dirLock)
		return nil, "", nil, fmt.Errorf("open SQLite in %s (store.data_dir): %w", c.DataDir, err)
	}
	return lite, "sqlite", func() { lite.Close(); ledger.settle(); dirLock.Release() }, nil
}

const serveUsage = `Usage: credgate serve [flags]

Runs the gateway. A first start generates the token and evidence signing keys
and the administrator's credential into the data dir, unless they are
configured. A start that fails leaves no file behind: it checks what it can
(as credgate config does) before it writes, and removes what it wrote if it
fails before it serves, except keys that signed into a database that stays.
A start on an evidence log that another key signed is refused (replicas share
one key), as is a second server on one SQLite data dir.
`

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, loader := commandFlags("serve", serveUsage, serveSettings, stderr)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(fs.Output(), "serve takes no arguments (got %q)\n", fs.Arg(0))
		return errUsage
	}
	cfg, err := loader.Load()
	if err != nil {
		return err
	}
	setServeGC(os.Getenv)
	return serveWith(ctx, cfg, stdout, stderr)
}

// newLogger is serve's logger. It is passed down, never installed as the
// process default: serve also runs inside tests, beside other servers.
func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// serveInputs is what a start reads and checks before it binds.
type serveInputs struct {
	cat       *policy.Catalog
	sources   []upstream.SourceConfig
	tokenOpts []access.Option
	tokenKey  ed25519.PrivateKey // nil: none configured nor in the data dir
	signer    *evidence.Signer   // nil: none configured nor in the data dir
	rdb       *redis.Client      // nil without redis.url; not connected yet
}

// checkServeInputs reads and checks, writing nothing, what a start of
// serve depends on before it binds: the catalogue and holidays, the
// sources file, configured keys and key files, keys kept in the data dir
// by an earlier start (a damaged one is refused), the Redis URL, and that
// the data and spool dirs are directories or can be made as such.
// credgate config runs it too, so that what it passes, a start passes
// until it binds. The caller closes in.rdb.
func checkServeInputs(cfg *config.Config, logger *slog.Logger) (*serveInputs, error) {
	in := new(serveInputs)
	var err error
	if in.cat, err = loadCatalog(cfg.Catalog); err != nil {
		return nil, err
	}
	if in.sources, err = loadSources(cfg.Upstream.Sources, in.cat); err != nil {
		return nil, err
	}
	if in.tokenOpts, err = tokenOptions(cfg.Access); err != nil {
		return nil, err
	}
	if cfg.Access.TokenKey != "" {
		if in.tokenKey, err = access.DecodeSeed(cfg.Access.TokenKey); err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Describe("access.token_key"), err)
		}
	}
	if in.signer, err = configuredSigner(cfg.Evidence); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Describe("evidence.key"), err)
	}
	if err := checkDir(cfg.Store.DataDir); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Describe("store.data_dir"), err)
	}
	if cfg.Evidence.Spool {
		if err := checkDir(spoolDir(cfg)); err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Describe("evidence.spool_dir"), err)
		}
	}
	// Keys kept in the data dir by an earlier start are read (and a damaged
	// one refused) now; only missing ones are generated, after the checks.
	if in.tokenKey == nil {
		if in.tokenKey, err = dataDirTokenKey(cfg.Store.DataDir, false); err != nil {
			return nil, err
		}
	}
	if in.signer == nil {
		if in.signer, err = dataDirSigner(cfg.Evidence.Origin, cfg.Store.DataDir, false, logger); err != nil {
			return nil, err
		}
	}
	if in.rdb, err = openRedis(cfg.Redis.URL); err != nil {
		return nil, err
	}
	return in, nil
}

// checkDir checks, writing nothing, that dir is a directory, or that the
// nearest of its parents that exists is one, so that it can be made.
// Whether it can be written is known only by writing: a start that then
// fails removes what it made (startLedger).
func checkDir(dir string) error {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		info, err := os.Stat(d)
		switch {
		case err == nil && info.IsDir():
			return nil
		case err == nil:
			return fmt.Errorf("%s is not a directory", d)
		case !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
			return err
		case filepath.Dir(d) == d:
			return err
		}
	}
}

// serveWith runs the gateway. Everything that can be checked without
// writing is checked first — the catalogue, the holidays and sources
// files, configured keys, the listen address (bound), the store (opened),
// the spool — so that a fresh data dir is written only by a start that
// can go on; only then are missing keys and the administrator's
// credential generated. A start that fails before it serves removes what
// it created (startLedger), unless it generated keys that may already
// have signed into a store that stays (PostgreSQL, or a SQLite database
// that an earlier start made): those stay with it.
func serveWith(ctx context.Context, cfg *config.Config, stdout, stderr io.Writer) (err error) {
	logger := newLogger(cfg.Log, stderr)
	useRedisLogger(logger)

	// 1. Read and validate what the start depends on; nothing is written.
	in, err := checkServeInputs(cfg, logger)
	if err != nil {
		return err
	}
	cat, sources, tokenOpts, tokenKey, signer, rdb := in.cat, in.sources, in.tokenOpts, in.tokenKey, in.signer, in.rdb
	if rdb != nil {
		// One Redis client, shared by the cache tier and the rate limiter,
		// closed after both.
		defer rdb.Close()
	}

	// 2. Bind: a port in use stops the start here.
	ln, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		return fmt.Errorf("%s: %w; is another credgate (or another program) using it? choose another address with --addr or CREDGATE_ADDR", cfg.Describe("server.addr"), err)
	}
	defer ln.Close() // if the start fails from here on; Serve closes it otherwise
	// The operations listener, if configured (serve_admin.go).
	adminLn, err := listenAdmin(cfg)
	if err != nil {
		return err
	}
	if adminLn != nil {
		defer adminLn.Close()
	}

	// 3. The store: opened (and migrated) before anything is generated.
	// From here on the ledger notes what the start creates; closeStore
	// removes it if the start fails before it serves.
	ledger := newStartLedger(logger)
	raw, kind, closeStore, err := openStoreNoted(ctx, cfg.Store, true, ledger, sqlite.WithLogger(logger))
	if err != nil {
		return err
	}
	defer closeStore()
	// Before closeStore (deferred above), which settles the ledger.
	serving := false
	defer func() {
		if err != nil && !serving {
			ledger.fail()
		}
	}()
	// A log already signed by a key this replica does not have is refused
	// before a key is generated or anything signed: signing on would fork
	// its history, and every receipt would stop verifying.
	if err := checkLogKey(ctx, raw, signer, cfg); err != nil {
		return err
	}
	// Everything below reads through the bound: a database that is down
	// or frozen fails requests within store.timeout instead of hanging them.
	st := bound(raw, cfg.Store.Timeout)
	// The spool is opened (and locked) before anything is generated or
	// signed: a spool dir that cannot be made or is in use stops the start
	// here.
	spool, err := openSpool(cfg, ledger)
	if err != nil {
		return err
	}
	if spool != nil {
		defer spool.Close() // if the start fails before startSpool takes it
	}

	// 4. Keys neither configured nor in the data dir: generated there on
	// the first start.
	if tokenKey == nil {
		ledger.absentDir(cfg.Store.DataDir)
		ledger.absent(filepath.Join(cfg.Store.DataDir, tokenKeyFile))
		if tokenKey, err = dataDirTokenKey(cfg.Store.DataDir, true); err != nil {
			return err
		}
	}
	if signer == nil {
		ledger.absentDir(cfg.Store.DataDir)
		ledger.absent(filepath.Join(cfg.Store.DataDir, evidenceKeyFile))
		if signer, err = dataDirSigner(cfg.Evidence.Origin, cfg.Store.DataDir, true, logger); err != nil {
			return err
		}
	}

	// Tracing (off unless an exporter is configured: then the components
	// hold no tracer at all); spans are flushed after the server stops.
	tracing, err := telemetry.Setup(ctx, telemetry.Config{Exporter: telemetry.Exporter(cfg.Tracing.Exporter),
		Endpoint: cfg.Tracing.Endpoint, SampleRatio: cfg.Tracing.SampleRatio, ServiceName: telemetry.DefaultServiceName})
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tracing.Shutdown(sctx); err != nil {
			logger.Warn("tracing shutdown", "error", err)
		}
	}()
	tp := tracing.TracerProvider()

	// The cache tier (and the upstream sources feeding the store) stops
	// before the store closes.
	caching, err := startCache(ctx, cfg.Cache, st, cat, sources, rdb, tokenKey, logger, cache.WithTracerProvider(tp))
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	defer caching.close()
	// The log remembers in the data dir the checkpoint it last published,
	// and refuses to sign a database restored or rolled back behind it.
	ledger.absentDir(cfg.Store.DataDir)
	ledger.absent(publishedCheckpointPath(cfg))
	evlog := evidence.NewLog(st, signer, evidence.WithCheckpointInterval(cfg.Evidence.CheckpointInterval), evidence.WithLogger(logger),
		evidence.WithPreviousKeys(cfg.Evidence.PreviousKeys...), evidence.WithPublishedFile(publishedCheckpointPath(cfg)),
		evidence.WithPreviousOrigin(cfg.Evidence.PreviousOrigin))
	// The log signs from here on. In a database this start made, what it
	// signed goes with the database if the start fails; in one that stays,
	// the keys that signed it must stay too.
	if !ledger.freshDB {
		ledger.keep()
	}
	stopLog, err := startEvidenceLog(ctx, st, evlog, logger)
	if err != nil {
		return rolledBack(err)
	}
	defer stopLog() // before the store closes
	// The store takes the leaf hashes computed as records queue.
	commits := newCommitMetrics()
	appender := evidence.NewAppender(st, evidence.WithLeafSink(st), evidence.WithCommitsInFlight(cfg.Evidence.CommitsInFlight),
		evidence.WithCommitObserver(commits))
	// Checks whose evidence the log cannot commit in time are spooled.
	checkLog, spoolOpts, stopSpool := startSpool(ctx, cfg, spool, appender, st, signer, kind, logger)
	defer stopSpool()
	// Checks read through the cache tier; answers as of a past time read
	// the store's entry history, never a cache.
	checker := service.NewChecker(cat, caching.tier, checkLog, st,
		append([]service.CheckerOption{service.WithHistory(st), service.WithTracerProvider(tp), service.WithReceiptBuilder(evlog)}, caching.checker...)...)
	// Administrative acts go through the same appender as checks.
	audit := service.NewAudit(appender)
	entries := service.NewEntries(st, cat, append([]service.EntriesOption{service.WithEntriesAudit(audit)}, caching.entries...)...)
	partners := service.NewPartners(st, cat, service.WithPartnersAudit(audit), partnerGrace(cfg))
	tokens := access.NewTokens(tokenKey, tokenOpts...)
	if err := recordCatalogLoaded(ctx, audit, cat); err != nil {
		appender.Close()
		return err
	}

	ledger.absentDir(cfg.Store.DataDir)
	ledger.absent(filepath.Join(cfg.Store.DataDir, adminCredentialsFile))
	adminID, err := bootstrapAdmin(ctx, partners, cfg.Access, cfg.Store.DataDir, logger)
	if err != nil {
		appender.Close()
		return err
	}

	receipts := service.NewReceipts(st, evlog)
	opts := []gateway.Option{gateway.WithLogger(logger), gateway.WithTracerProvider(tp), gateway.WithReadiness(kind, st), gateway.WithEvidence(evlog, receipts),
		gateway.WithCollectors(commits.collectors()...)}
	opts = append(opts, logReadiness(evlog)...)
	// Objections, repairs, exits and violation records share the entry
	// service's clock, audit and change hook (caches invalidate on them).
	lifecycle := service.NewLifecycle(entries, st)
	followUpOpt, feedback := followUp(cat, checker, appender, st, audit, lifecycle)
	opts = append(opts, gateway.WithLifecycle(lifecycle), followUpOpt)
	accessOpts, err := accessGatewayOptions(cfg.Access, rdb, logger)
	if err != nil {
		appender.Close()
		return err
	}
	opts = append(opts, accessOpts...)
	opts = append(opts, gateway.WithActs(service.NewActs(st)))
	pushOpts, deliverer, stopPush, err := startPush(ctx, cfg.Events, raw, cfg.Store.Timeout, cat, audit, tokenKey, logger)
	if err != nil {
		appender.Close()
		return err
	}
	defer stopPush()
	opts = append(opts, pushOpts...)
	opts = append(opts, caching.gateway...)
	opts = append(opts, gateway.WithCheckCapacity(cfg.Server.ChecksInFlight, cfg.Server.CheckQueue),
		gateway.WithShedAcceptPause(cfg.Server.ShedAcceptPause, cfg.Server.ShedPauseAfter))
	opts = append(opts, spoolOpts...)
	opts = append(opts, startScreenings(ctx, checker, st, caching.tier, cfg.Store, logger))
	idemOpt, stopIdem := startIdempotencySweep(ctx, st, logger)
	defer stopIdem() // before the store closes
	opts = append(opts, idemOpt)
	if cfg.Server.BenchNoop {
		opts = append(opts, gateway.WithNoopEndpoint())
	}
	if adminLn != nil {
		opts = append(opts, gateway.WithAdminListener())
	}
	// The console (/console/) works through the same service objects.
	api := gateway.New(checker, entries, partners, tokens, opts...)
	web, err := console.New(console.Deps{Checker: checker, Entries: entries, Lifecycle: lifecycle, Partners: partners,
		Receipts: receipts, Evidence: evlog, Records: st, Health: api,
		Checks: service.NewStats(cat, st, service.WithStatsAudit(audit)), Deliveries: deliverer, Feedback: feedback},
		console.WithLogger(logger), console.WithOrigin(api.RequestOrigin))
	if err != nil {
		appender.Close()
		return err
	}
	srv := &http.Server{
		Handler:           console.Mount(api.Handler(), web),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    gateway.HTTPMaxHeaderBytes, // above the gateway's own limits, which answer problems
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	// Connections past server.max_connections are closed as they come:
	// load shedding bounds the checks, this the connections they come on;
	// and once refusals are sustained, none is accepted for a pause
	// (server.shed_accept_pause, server.shed_pause_after).
	limited, err := api.LimitConnections(ln, cfg.Server.MaxConnections)
	if err != nil {
		appender.Close()
		return err
	}
	logger.Info("credgate serving", "addr", ln.Addr().String(), "store", kind, "catalog_revision", cat.Revision(),
		"catalog_origin", cat.Origin(), "calendar_years", cat.Calendar().Covered(), "measures", len(cat.Measures()))
	if adminLn != nil {
		logger.Info("credgate admin listener serving", "addr", adminLn.Addr().String())
		fmt.Fprintf(stdout, "Metrics, readiness and pprof: http://%s\n", adminLn.Addr().String())
		stopAdmin := serveAdmin(adminLn, api.AdminHandler(), logger)
		// Last to stop: metrics stay up while requests drain.
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			stopAdmin(sctx)
		}()
	}
	printWelcome(stdout, ln.Addr().String(), adminID, cfg)

	// Serving: what the start created stays, however it ends.
	serving = true
	ledger.keep()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(limited) }()
	select {
	case err := <-errc:
		appender.Close()
		return err
	case <-ctx.Done():
	}
	logger.Info("draining in-flight requests", "timeout", cfg.Server.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	// Every answered check is already committed or spooled; Close commits
	// what is still queued from requests that were cut off.
	stopSpool()
	appender.Close()
	logger.Info("stopped")
	return err
}

const tokenKeyFile = "token-signing.key"

// dataDirTokenKey reads the token signing key from the data dir; when
// there is none, it generates one there if generate is set, and returns
// nil otherwise.
func dataDirTokenKey(dataDir string, generate bool) (ed25519.PrivateKey, error) {
	path := filepath.Join(dataDir, tokenKeyFile)
	if b, err := os.ReadFile(path); err == nil {
		key, err := access.DecodeSeed(string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w; restore it, or remove it to have a new one generated (tokens signed with it stop working), or set access.token_key (CREDGATE_TOKEN_KEY)", path, err)
		}
		return key, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("token key: %w", err)
	}
	if !generate {
		return nil, nil
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

// writeSecretFile creates path with mode 0600 (and its directory, 0700),
// failing if it exists.
func writeSecretFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
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

// bootstrapAdmin makes sure an administrator exists: the one configured
// (access.admin_client_id/secret), or else one generated on first start and
// written to a 0600 file in the data dir. The secret is never logged.
func bootstrapAdmin(ctx context.Context, partners *service.Partners, c config.Access, dataDir string, logger *slog.Logger) (id string, err error) {
	id, secret := c.AdminClientID, c.AdminClientSecret
	path := filepath.Join(dataDir, adminCredentialsFile)
	if id == "" {
		var saved struct {
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		}
		if b, err := os.ReadFile(path); err == nil {
			if err := json.Unmarshal(b, &saved); err != nil {
				return "", fmt.Errorf("%s: %w", path, err)
			}
			id, secret = saved.ClientID, saved.ClientSecret
		} else {
			id = "admin"
			if secret, err = access.NewSecret(); err != nil {
				return "", err
			}
			saved.ClientID, saved.ClientSecret = id, secret
			b, _ := json.MarshalIndent(saved, "", "  ")
			if err := writeSecretFile(path, append(b, '\n')); err != nil {
				return "", fmt.Errorf("write admin credentials: %w", err)
			}
			logger.Info("generated the bootstrap administrator's credentials", "file", path)
		}
	}
	created, err := partners.EnsureAdmin(ctx, id, secret)
	if err != nil {
		return "", fmt.Errorf("bootstrap administrator: %w", err)
	}
	// An existing id is left as it is, a revoked one too: say so, or a
	// break-glass start under a used id looks as if it had worked.
	if !created {
		if p, err := partners.Get(ctx, id); err == nil && p.Status == service.PartnerRevoked {
			logger.Warn("the bootstrap administrator is revoked and is not brought back; for a break-glass start set access.admin_client_id (CREDGATE_ADMIN_CLIENT_ID) to a client id never used before, with its secret",
				"client_id", id)
		}
	}
	return id, nil
}

// printWelcome tells the operator how to get a token, without the secret.
func printWelcome(w io.Writer, addr, adminID string, cfg *config.Config) {
	host := addr
	if strings.HasPrefix(host, "[::]:") || strings.HasPrefix(host, "0.0.0.0:") || strings.HasPrefix(host, ":") {
		host = "localhost:" + host[strings.LastIndex(host, ":")+1:]
	}
	secretHint := fmt.Sprintf("$(jq -r .client_secret %s)", filepath.Join(cfg.Store.DataDir, adminCredentialsFile))
	if cfg.Access.AdminClientSecret != "" {
		secretHint = "$CREDGATE_ADMIN_CLIENT_SECRET"
		if o := cfg.Origin("access.admin_client_secret"); o.Source == config.FromFile {
			secretHint = "SECRET" // access.admin_client_secret of the configuration file
		}
	}
	fmt.Fprintf(w, `credgate is listening on http://%s
Get an administrator token:
  curl -s -u %s:%s -d grant_type=client_credentials http://%s/v1/oauth/token
`, host, adminID, secretHint, host)
	if !strings.HasPrefix(host, "localhost:8080") {
		fmt.Fprintf(w, "Command line clients: credgate partners --url http://%s (or CREDGATE_URL=http://%s)\n", host, host)
	}
}
