// Package gateway is credgate's HTTP interface: the gin router, handlers and
// middleware (authentication, request ids, body limits, metrics). Handlers
// are thin: they decode, call the service layer and encode; every error
// becomes RFC 9457 problem+json in problem.go.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/credgate/credgate/access"
	"github.com/credgate/credgate/service"
)

// Body limits per kind of request.
const (
	MaxJSONBody  = 64 << 10
	MaxBatchBody = 512 << 10
	// MaxImportBody: imports stream, so a file is limited only by this
	// and service.MaxImportEntries.
	MaxImportBody = 64 << 30
)

// Pinger reports whether a dependency is ready.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Server holds what the handlers need.
type Server struct {
	logger  *slog.Logger
	checker *service.Checker
	entries *service.Entries
	// screenings serves screening jobs; nil: not served (screenings.go).
	screenings *service.Screenings
	partners   *service.Partners
	tokens     *access.Tokens
	ready      map[string]Pinger
	registry   *prometheus.Registry
	noop       bool
	evidence   *evidenceAPI  // nil unless WithEvidence (evidence.go)
	limits     *RateLimiter  // quotas and token endpoint throttling (ratelimit.go)
	acts       *service.Acts // administrative acts read back (acts.go)
	proxies    []string      // trusted reverse proxies (WithTrustedProxies)
	proxyNets  []*net.IPNet  // proxies parsed, for RequestOrigin (origin.go)
	tracing    tracing       // spans of requests (tracing.go)
	shedding   *shedder      // the bounded queue in front of checks (shed.go)
	// shed is load shedding's settings (WithCheckCapacity,
	// WithShedAcceptPause), from which New builds shedding once every
	// option has been applied, in whatever order they came.
	shed shedConfig

	// lifecycle serves objections, repairs, exits and violation records;
	// nil unless WithLifecycle (lifecycle.go).
	lifecycle *service.Lifecycle
	// followUp serves feedback, statistics, coverage and commitments;
	// nil unless WithFollowUp (followup.go).
	followUp *followUpAPI

	// push serves events, watchlists and webhooks (events.go).
	push *pushAPI

	// status holds the breakers and informational /readyz sections
	// (status.go).
	status *statusReport

	// adminSeparate: the operations endpoints are served by AdminHandler
	// only (WithAdminListener, admin.go).
	adminSeparate bool

	checks   *prometheus.CounterVec
	requests *prometheus.HistogramVec

	// answers are the reused buffers check answers are written from
	// (answerbuf.go).
	answers answerBuffers
}

// Option configures a Server.
type Option func(*Server)

// WithLogger sets the logger (default slog.Default()). Handlers log request
// ids, client ids and masked subjects, never tokens, secrets or ID numbers.
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.logger = l } }

// WithReadiness adds a named dependency to /readyz.
func WithReadiness(name string, p Pinger) Option { return func(s *Server) { s.ready[name] = p } }

// WithNoopEndpoint mounts POST /bench/noop, a JSON handler that does no
// work, so that load runs can measure the server's ceiling beside checks.
func WithNoopEndpoint() Option { return func(s *Server) { s.noop = true } }

// WithRegistry sets the Prometheus registry (default: a new one with Go
// and process collectors).
func WithRegistry(r *prometheus.Registry) Option { return func(s *Server) { s.registry = r } }

// WithRateLimiter sets the quotas and throttles (default: the default
// quota, counted in this replica's memory).
func WithRateLimiter(l *RateLimiter) Option { return func(s *Server) { s.limits = l } }

// WithTrustedProxies names the reverse proxies (IPs or CIDRs) whose
// X-Forwarded-For gives the caller's address; by default none is trusted
// and the caller's address is the connection's. Throttling keys on it.
func WithTrustedProxies(cidrs ...string) Option { return func(s *Server) { s.proxies = cidrs } }

// New builds the server.
func New(checker *service.Checker, entries *service.Entries, partners *service.Partners, tokens *access.Tokens, opts ...Option) *Server {
	s := &Server{logger: slog.Default(), checker: checker, entries: entries, partners: partners, tokens: tokens, ready: map[string]Pinger{},
		shed: shedConfig{inFlight: DefaultChecksInFlight, queue: DefaultCheckQueue}}
	for _, o := range opts {
		o(s)
	}
	s.proxyNets = parseProxies(s.proxies)
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
		s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	s.checks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "credgate_checks_total", Help: "Checks answered, by action and outcome.",
	}, []string{"action", "outcome"})
	s.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "credgate_http_request_duration_seconds", Help: "HTTP request latency by route and status.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route", "method", "status"})
	s.registry.MustRegister(s.checks, s.requests)
	s.registerStatus()
	if s.limits == nil {
		s.limits, _ = NewRateLimiter(DefaultRateLimit) // the constant parses
	}
	s.shedding = newShedder(s.shed)
	s.registry.MustRegister(s.shedding.collectors()...)
	s.registry.MustRegister(s.limits.Collectors()...)
	return s
}

// Handler returns the HTTP handler with every route: the gin router
// behind the refusal of checks past capacity (shed.go), which answers
// them before the router spends anything on them.
func (s *Server) Handler() http.Handler {
	return s.shedding.front(s.router(), s.logger, s.requests)
}

// router is the gin router with every route.
func (s *Server) router() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.ContextWithFallback = true
	r.HandleMethodNotAllowed = true
	// A trailing slash is a client error, not a redirect to follow.
	r.RedirectTrailingSlash = false
	// ClientIP (throttling) believes X-Forwarded-For only from these.
	_ = r.SetTrustedProxies(s.proxies)
	// Headers and media type are refused before authentication and the
	// quota: nothing is read, parsed or charged for them.
	r.Use(s.recoverer, s.requestID, s.traceRequest, s.observe, limitHeaders, requireJSON, singleQuery)
	r.NoRoute(func(c *gin.Context) {
		fail(c, problem(http.StatusNotFound, "not_found", "Not found", "no such endpoint"))
	})
	r.NoMethod(func(c *gin.Context) {
		fail(c, problem(http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed", ""))
	})

	if !s.adminSeparate {
		s.mountOperations(r) // else on AdminHandler (admin.go)
	}
	if s.noop {
		r.POST("/bench/noop", limitBody(MaxJSONBody), s.benchNoop)
	}

	v1 := r.Group("/v1")
	v1.POST("/oauth/token", limitBody(MaxJSONBody), s.token)
	r.GET("/.well-known/jwks.json", s.jwksHandler)

	authed := v1.Group("", s.authChain()...)
	authed.GET("/catalog", s.catalog)
	// Checks pass the bounded queue (shed.go) before authentication.
	checks := v1.Group("", append([]gin.HandlerFunc{s.shedding.admit}, s.authChain()...)...)
	checks.POST("/checks", limitBody(MaxJSONBody), s.check)
	checks.POST("/checks\\:batch", limitBody(MaxBatchBody), s.checkBatch)
	// A staff read of a check is recorded with its reader as the actor.
	authed.GET("/checks/:id", s.asActor, s.getCheck)
	s.mountEvidence(v1, authed)
	s.mountScreenings(authed)

	// Auditors read partners (to make sense of evidence and statistics);
	// only administrators change anything.
	// The reader is the actor of the acts recording staff reads.
	audit := authed.Group("/admin", require(service.RoleAdmin, service.RoleAuditor), s.asActor)
	audit.GET("/partners", s.listPartners)
	audit.GET("/partners/:client_id", s.getPartner)
	audit.GET("/acts", s.listActs)
	// Checks found by partner, action, outcome and period (checksearch.go).
	audit.GET("/checks", s.needFollowUp, s.asActor, s.searchChecks)

	admin := authed.Group("/admin", require(service.RoleAdmin), s.asActor)
	admin.POST("/entries", limitBody(MaxJSONBody), s.createEntry)
	admin.POST("/entries\\:import", limitBody(MaxImportBody), s.importEntries)
	admin.GET("/entries", s.listEntries)
	admin.GET("/entries/:id", s.getEntry)
	admin.PATCH("/entries/:id", limitBody(MaxJSONBody), s.patchEntry)
	// POST /v1/admin/entries/{id}:revoke: gin cannot route a literal after
	// a parameter in one segment, so the verb is split off here.
	admin.POST("/entries/:id", limitBody(MaxJSONBody), s.entryVerb)
	admin.POST("/partners", limitBody(MaxJSONBody), s.createPartner)
	admin.PATCH("/partners/:client_id", limitBody(MaxJSONBody), s.patchPartner)
	admin.POST("/partners/:client_id", limitBody(MaxJSONBody), s.partnerVerb)
	s.mountLifecycle(authed, admin, audit)
	s.mountFollowUp(authed)
	s.mountPush(r, authed, admin, audit)
	return r
}

func (s *Server) recoverer(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v) // a deliberate abort: net/http closes the connection
			}
			s.logger.Error("panic in handler", "path", c.FullPath(), "panic", v)
			fail(c, problem(http.StatusInternalServerError, "internal", "Internal error", ""))
		}
	}()
	c.Next()
}

// requestID takes the caller's X-Request-Id if it is sane, else makes one,
// and echoes it so a clerk can quote it to support.
func (s *Server) requestID(c *gin.Context) {
	id := c.GetHeader("X-Request-Id")
	if !saneRequestID(id) {
		id = newRequestID()
	}
	c.Set(ctxRequestID, id)
	c.Set(ctxLogger, s.logger)
	c.Header("X-Request-Id", id)
	c.Next()
}

// newRequestID is a request ID for a request that brought none (or none
// sane): 96 random bits in hex.
func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	var id [24]byte
	hex.Encode(id[:], b[:])
	return string(id[:]) // one allocation, where EncodeToString makes two
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r == '-' || r == '_' || r == '.' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')) {
			return false
		}
	}
	return true
}

func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	s.requests.WithLabelValues(route, c.Request.Method, strconv.Itoa(c.Writer.Status())).Observe(time.Since(start).Seconds())
}

// limitBody caps the request body; reading past it fails the decode with
// 413.
func limitBody(n int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength > n {
			fail(c, problem(http.StatusRequestEntityTooLarge, "body_too_large", "Request body too large",
				"the body is larger than "+strconv.FormatInt(n, 10)+" bytes"))
			return
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, n)
		c.Next()
	}
}

func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	status := http.StatusOK
	deps := gin.H{}
	for name, p := range s.ready {
		if err := p.Ping(ctx); err != nil {
			if s.unreadyDespiteDown(name) {
				status = http.StatusServiceUnavailable
			}
			deps[name] = "down"
			continue
		}
		deps[name] = "ok"
	}
	if s.spoolStuck() {
		status = http.StatusServiceUnavailable
	}
	state := "ready"
	if status != http.StatusOK {
		state = "not_ready"
	}
	body := gin.H{"status": state, "dependencies": deps}
	s.addStatus(ctx, body)
	c.JSON(status, body)
}

func (s *Server) benchNoop(c *gin.Context) {
	var v map[string]any
	if err := decodeJSON(c.Request.Body, &v); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"outcome": "clear"})
}
