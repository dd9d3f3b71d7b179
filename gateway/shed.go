package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

// ErrOverloaded: the check path is at capacity (every slot busy and the
// queue full); the request was refused before any work and may be retried.
var ErrOverloaded = errors.New("overloaded")

// Defaults of load shedding on the check path.
const (
	// DefaultChecksInFlight is how many checks run at once. Group commit
	// shares one durable commit among the checks waiting for it, so a few
	// hundred keep the commits full without letting latency grow.
	DefaultChecksInFlight = 256
	// DefaultCheckQueue is how many checks wait for a slot beyond those;
	// each waits at most about queue ÷ throughput.
	DefaultCheckQueue = 256
	// DefaultMaxConnections is how many connections a replica holds open
	// at once (LimitConnections). Each costs a goroutine and its buffers
	// (tens of KB while busy), so without a bound a load many times the
	// capacity grows memory with the callers' connection pools.
	DefaultMaxConnections = 2048
	// DefaultShedAcceptPause is serve's accept pause once refusals are
	// sustained (WithShedAcceptPause), the Retry-After that refusals give. A Server
	// built without the option has none: only a listener gated by it
	// (WithAcceptGate) makes the pause mean anything.
	DefaultShedAcceptPause = time.Second
	// DefaultShedPauseAfter is how many refusals within a tenth of the
	// pause start one: about 1 000 a second, a few per cent of a core at
	// a refusal's 30 µs. Fewer are cheaper to answer than a pause would
	// be to the callers opening connections meanwhile.
	DefaultShedPauseAfter = 100
)

// shedLogEvery is the least time between two log lines about shedding:
// at thousands of refusals a second a line each would cost more than the
// refusals themselves, and say nothing the counter does not.
const shedLogEvery = 10 * time.Second

// shedder is a bounded queue in front of the check path. Without it an
// offered load above capacity queues without limit in goroutines, buffers
// and the evidence appender: latency grows to seconds for everyone and
// memory with it. With it, a check past capacity is answered 503 with
// Retry-After at once, and the checks admitted keep their latency.
//
// A refusal must cost far less than a check, or refusing cannot keep the
// checks admitted going: it reads nothing of the body (net/http discards
// a small unread body after the answer and keeps the connection), runs no
// authentication and no quota, writes a body encoded in advance and logs
// at most one line per shedLogEvery.
type shedder struct {
	slots   chan struct{}
	waiting atomic.Int64
	queue   int64
	shed    prometheus.Counter
	queued  prometheus.Counter
	waits   prometheus.GaugeFunc
	// detail is the refusal's explanation; bodies its problem documents by
	// request path, up to the request ID (refuse).
	detail string
	bodies map[string][]byte
	// lastLog (unix nanoseconds) and sinceLog: the shedding log line.
	lastLog  atomic.Int64
	sinceLog atomic.Int64
	// pause (0: off) is how long new connections wait unaccepted once
	// refusals are sustained (AcceptPause); lastShed is when the latest
	// pause began, in unix nanoseconds. With a pause, refusals close their
	// connection.
	pause    time.Duration
	lastShed atomic.Int64
	paused   prometheus.GaugeFunc
	// pauses counts the pauses started: the gauge is 1 for a second at a
	// time, which a scrape every 15 s mostly misses.
	pauses prometheus.Counter
	// pauseAfter refusals within a span of pause/pauseSpanDiv start a
	// pause; spanStart (unix nanoseconds) and spanCount count them.
	pauseAfter int
	spanMu     sync.Mutex
	spanStart  int64
	spanCount  int
}

// shedConfig is what the options set of load shedding: checks in flight
// and waiting (WithCheckCapacity), the accept pause and the refusals that
// start one (WithShedAcceptPause; a zero pause is none).
type shedConfig struct {
	inFlight, queue int
	pause           time.Duration
	pauseAfter      int
}

// The paths load shedding answers; others get their body encoded per
// refusal.
var shedPaths = [...]string{"/v1/checks", "/v1/checks:batch"}

func newShedder(cfg shedConfig) *shedder {
	if cfg.inFlight < 1 {
		cfg.inFlight = DefaultChecksInFlight
	}
	if cfg.queue < 0 {
		cfg.queue = DefaultCheckQueue
	}
	sh := &shedder{slots: make(chan struct{}, cfg.inFlight), queue: int64(cfg.queue),
		pause: cfg.pause, pauseAfter: cfg.pauseAfter,
		shed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "credgate_checks_shed_total",
			Help: "Checks refused with 503 overloaded because every slot was busy and the queue full.",
		}),
		queued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "credgate_checks_queued_total",
			Help: "Checks that found every slot busy and waited in load shedding's queue (admitted later, or given up by their caller).",
		})}
	sh.waits = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "credgate_checks_waiting", Help: "Checks waiting for a slot (load shedding's queue).",
	}, func() float64 { return float64(max(0, sh.waiting.Load())) })
	sh.paused = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "credgate_connections_accept_paused",
		Help: "1 while new connections wait unaccepted because refusals for capacity started a pause of server.shed_accept_pause, else 0.",
	}, func() float64 {
		if sh.acceptPause(time.Now()) > 0 {
			return 1
		}
		return 0
	})
	sh.pauses = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "credgate_connections_accept_pauses_total",
		Help: "Pauses of server.shed_accept_pause started by refusals for capacity, in which new connections waited unaccepted.",
	})
	sh.detail = fmt.Sprintf("%v: %d checks in progress and %d waiting; retry after Retry-After seconds",
		ErrOverloaded, cfg.inFlight, cfg.queue)
	sh.bodies = make(map[string][]byte, len(shedPaths))
	for _, path := range shedPaths {
		sh.bodies[path] = sh.bodyPrefix(path)
	}
	return sh
}

// bodyPrefix is the problem document of a refusal of path, up to the
// value of request_id: the same fields, in the same order, as fail writes.
func (sh *shedder) bodyPrefix(path string) []byte {
	p := overloadedProblem(fmt.Errorf("%w", ErrOverloaded))
	p.Detail, p.Instance, p.RequestID = sh.detail, path, "-"
	b, _ := json.Marshal(p) // strings and an int: cannot fail
	return b[:len(b)-len(`"-"}`)]
}

func (sh *shedder) collectors() []prometheus.Collector {
	return []prometheus.Collector{sh.shed, sh.queued, sh.waits, sh.paused, sh.pauses}
}

// refused notes a refusal for capacity: counted, logged at most once per
// shedLogEvery, and, with a pause set, perhaps the start of a pause.
func (sh *shedder) refused(ctx context.Context, logger *slog.Logger) {
	sh.shed.Inc()
	sh.noteShed(ctx, logger)
	if sh.pause > 0 {
		sh.pauseFrom(time.Now())
	}
}

// pauseFrom counts a refusal at t, and starts a pause if it is the
// pauseAfter-th within a span of pause/pauseSpanDiv, unless a pause is
// going on or t falls in the window after one.
//
// A few refusals are a burst, cheaper to answer than to pause for: a
// pause holds off every caller's new connection for its length.
//
// Refusals during a pause do not extend it: a caller whose connection
// waits in the accept queue then waits at most the pause and the window,
// which is what Retry-After asked of it. The window (a twentieth of the
// pause) lets every connection that waited out the pause be accepted and
// answered (admitted, or refused and closed) before the next: were the
// first refusal after a pause to start the next at once, a connection or
// two would get through per pause, and a caller at the back of the
// queue would wait many pauses for any answer.
func (sh *shedder) pauseFrom(t time.Time) {
	now := t.UnixNano()
	last := sh.lastShed.Load()
	if now < last+int64(sh.pause)+int64(sh.pause/acceptWindowDiv) {
		return
	}
	if sh.pauseAfter > 1 {
		sh.spanMu.Lock()
		if now-sh.spanStart >= int64(sh.pause/pauseSpanDiv) || now < sh.spanStart {
			sh.spanStart, sh.spanCount = now, 0
		}
		sh.spanCount++
		n := sh.spanCount
		if n >= sh.pauseAfter {
			sh.spanCount = 0
		}
		sh.spanMu.Unlock()
		if n < sh.pauseAfter {
			return
		}
	}
	// Of refusals racing to start the same pause, one does (and counts it).
	if sh.lastShed.CompareAndSwap(last, now) {
		sh.pauses.Inc()
	}
}

// pauseSpanDiv: refusals are counted towards a pause over spans of
// pause / pauseSpanDiv (100 ms of a 1 s pause).
const pauseSpanDiv = 10

// acceptWindowDiv: the window after a pause is pause / acceptWindowDiv
// (50 ms of a 1 s pause), long enough to accept a queue of thousands and
// short enough that the refusals it lets arrive cost a few per cent.
const acceptWindowDiv = 20

// acceptPause is what is left at now of the pause going on (0: none).
func (sh *shedder) acceptPause(now time.Time) time.Duration {
	if sh.pause <= 0 {
		return 0
	}
	last := sh.lastShed.Load()
	if last == 0 {
		return 0
	}
	return max(0, sh.pause-time.Duration(now.UnixNano()-last))
}

// WithShedAcceptPause makes load shedding reach below HTTP. A check
// refused for capacity is answered 503 overloaded with Retry-After as
// always, and also with Connection: close; and after refusals at a rate
// of after within a tenth of d, a pause of d starts in which a ConnLimit
// given AcceptPause (WithAcceptGate) accepts no new connection, so
// callers' further connections wait in the kernel's accept queue, or
// their connection attempts back off, instead of arriving as requests.
// After it, for d/20, refusals start no pause (pauseFrom). after < 1 is
// 1: the first refusal pauses. d of 0, the default: connections are
// kept and accepted as usual.
//
// Why: a 503 costs the server's CPU a read, a parse and a write per
// request (about a third of a check's CPU here), so past about twice the
// capacity the refusals take the CPU that the admitted checks need, and
// refusing cheaper inside net/http is not possible. Closed connections
// and a paused accept make the excess cost one refusal per connection
// per pause instead of one per request, the way a proxy's connection
// limit or Envoy's overload actions shed. The callers holding admitted
// connections keep being answered; a new or refused caller waits at
// most the pause and its window (Retry-After says 1 s: a caller that
// retries at once waits out in the accept queue what it was asked to)
// and then gets its turn.
func WithShedAcceptPause(d time.Duration, after int) Option {
	return func(s *Server) { s.shed.pause, s.shed.pauseAfter = max(d, 0), max(after, 1) }
}

// AcceptPause is how long a ConnLimit should still hold off accepting
// new connections because checks were refused for capacity
// (WithShedAcceptPause; 0: accept now).
func (s *Server) AcceptPause() time.Duration { return s.shedding.acceptPause(time.Now()) }

// WithCheckCapacity sets how many checks (single or batch requests) run at
// once and how many more may wait for a slot; past both, a check is
// answered 503 overloaded with Retry-After (defaults DefaultChecksInFlight
// and DefaultCheckQueue).
func WithCheckCapacity(inFlight, queue int) Option {
	return func(s *Server) { s.shed.inFlight, s.shed.queue = inFlight, queue }
}

// admit is the middleware: it holds a slot for the rest of the chain.
// It runs before authentication and the quota, so a refused request costs
// neither a token check nor a unit of quota.
func (sh *shedder) admit(c *gin.Context) {
	select {
	case sh.slots <- struct{}{}:
	default:
		// A full queue refuses at once: it never waits to find out.
		if sh.waiting.Add(1) > sh.queue {
			sh.waiting.Add(-1)
			sh.refuse(c)
			return
		}
		sh.queued.Inc()
		select {
		case sh.slots <- struct{}{}:
			sh.waiting.Add(-1)
		case <-c.Request.Context().Done():
			sh.waiting.Add(-1)
			sh.refuse(c)
			return
		}
	}
	defer func() { <-sh.slots }()
	c.Next()
}

// refuse answers 503 overloaded with Retry-After: the problem document
// fail would write, without its error log line per request.
func (sh *shedder) refuse(c *gin.Context) {
	sh.refused(c.Request.Context(), loggerOf(c))
	c.Header("Retry-After", "1")
	if sh.pause > 0 {
		c.Header("Connection", "close")
	}
	id := c.GetString(ctxRequestID)
	prefix, ok := sh.bodies[c.Request.URL.Path]
	if !ok || !safeRequestID(id) {
		fail(c, fmt.Errorf("%w: %d checks in progress and %d waiting; retry after Retry-After seconds",
			ErrOverloaded, cap(sh.slots), sh.queue))
		return
	}
	body := make([]byte, 0, len(prefix)+len(id)+3)
	body = append(body, prefix...)
	body = append(body, '"')
	body = append(body, id...)
	body = append(body, `"}`...)
	c.Header("Content-Length", strconv.Itoa(len(body)))
	c.Data(http.StatusServiceUnavailable, problemContentType, body)
	c.Abort()
}

// safeRequestID reports whether id can be written into JSON as it is
// (requestID makes sure of it; this keeps the body valid if that changes).
func safeRequestID(id string) bool {
	if id == "" {
		return false
	}
	for i := range len(id) {
		if b := id[i]; b < 0x20 || b >= 0x7f || b == '"' || b == '\\' {
			return false
		}
	}
	return true
}

// noteShed logs that checks are being shed, at most once per
// shedLogEvery, with how many were refused since the last line.
func (sh *shedder) noteShed(ctx context.Context, logger *slog.Logger) {
	n := sh.sinceLog.Add(1)
	now := time.Now().UnixNano()
	last := sh.lastLog.Load()
	if now-last < int64(shedLogEvery) || !sh.lastLog.CompareAndSwap(last, now) {
		return
	}
	sh.sinceLog.Add(-n)
	logger.LogAttrs(ctx, slog.LevelWarn, "checks shed: at capacity",
		slog.Int64("refused", n), slog.Int("checks_in_flight", cap(sh.slots)), slog.Int64("check_queue", sh.queue))
}

// full reports whether a check arriving now would be refused: every slot
// busy and the queue full. It reads without locking, so it may be stale
// by a check or two either way; admit decides for the checks it lets by.
func (sh *shedder) full() bool {
	return len(sh.slots) == cap(sh.slots) && sh.waiting.Load() >= sh.queue
}

// front returns the server's handler: checks refused for capacity are
// answered here, everything else goes to router.
//
// A refusal must cost the server's CPU far less than a check, or at a
// load several times the capacity the refusals take the CPU the admitted
// checks need. Inside gin it paid for a context from the router's pool,
// the routing, and the middleware ahead of admit (recovery, request ID,
// tracing, metrics, header and media type checks): about 2 µs and 14
// allocations, on top of net/http's own read, parse and write
// (BenchmarkShedRefusal). Here it pays a comparison of two counters, the
// request ID (the caller's or a new one), the metric and the body
// encoded in advance. A refused check is not traced: a span each would
// cost more than the refusal.
//
// When a check is let by, admit (in the router, after the metrics and
// the trace start) takes the slot or the queue place or, having lost a
// race for the last one, refuses it the same way.
func (sh *shedder) front(router *gin.Engine, logger *slog.Logger, requests *prometheus.HistogramVec) http.Handler {
	f := &shedFront{router: router, sh: sh, logger: logger}
	for i, path := range shedPaths {
		// The router's route label for these paths is the path itself
		// (gin's FullPath of "/v1/checks\\:batch" is "/v1/checks:batch"):
		// refusals here and there add to one series.
		f.observe[i] = requests.WithLabelValues(path, http.MethodPost, strconv.Itoa(http.StatusServiceUnavailable))
		f.bodies[i] = sh.bodies[path]
	}
	return f
}

type shedFront struct {
	router *gin.Engine
	sh     *shedder
	logger *slog.Logger
	// observe and bodies: the request duration metric and the problem
	// document's prefix of a refusal, by index in shedPaths.
	observe [len(shedPaths)]prometheus.Observer
	bodies  [len(shedPaths)][]byte
}

// Header values shared by every refusal, never modified.
var (
	retryAfterValue      = []string{"1"}
	problemTypeValue     = []string{problemContentType}
	connectionCloseValue = []string{"close"}
)

func (f *shedFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && f.sh.full() {
		for i, path := range shedPaths {
			if r.URL.Path == path {
				f.refuse(w, r, i)
				return
			}
		}
	}
	f.router.ServeHTTP(w, r)
}

// refuse writes refuse's answer without gin. The body is not read: after
// the answer net/http discards what is left of it (up to 256 KB; a
// longer one closes the connection) and keeps the connection.
// Content-Length is net/http's: the whole answer fits its buffer.
func (f *shedFront) refuse(w http.ResponseWriter, r *http.Request, i int) {
	start := time.Now()
	f.sh.refused(r.Context(), f.logger)
	id := r.Header.Get("X-Request-Id")
	if !saneRequestID(id) {
		id = newRequestID()
	}
	h := w.Header()
	h["X-Request-Id"] = []string{id}
	h["Retry-After"] = retryAfterValue
	h["Content-Type"] = problemTypeValue
	if f.sh.pause > 0 {
		h["Connection"] = connectionCloseValue
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write(f.bodies[i])
	_, _ = io.WriteString(w, `"`)
	_, _ = io.WriteString(w, id) // saneRequestID: nothing to escape
	_, _ = io.WriteString(w, `"}`)
	f.observe[i].Observe(time.Since(start).Seconds())
}

// Routes lists the router's routes (the contract test compares them with
// openapi.yaml).
func (f *shedFront) Routes() gin.RoutesInfo { return f.router.Routes() }

// overloadedProblem is ErrOverloaded's answer (problem.go).
func overloadedProblem(err error) *Problem {
	return problem(http.StatusServiceUnavailable, "overloaded", "Overloaded", err.Error())
}

// ConnLimit is a listener that holds at most its limit of connections
// open. A connection accepted past it is closed at once, before anything
// is read from it: the caller sees the connection closed and retries
// later, and the server spends neither a goroutine nor buffers on it.
// Connections already open are not touched, so callers that keep theirs
// alive keep being answered (past check capacity: 503 overloaded).
//
// With an AcceptGate (WithAcceptGate) it also hands on no connection
// while the gate says to pause: the one accepted last is held unread and
// the others wait in the kernel's accept queue (once that is full, the
// kernel drops their SYNs, which callers' TCP stacks retry with
// backoff), costing the server nothing.
type ConnLimit struct {
	net.Listener
	slots   chan struct{}
	logger  *slog.Logger
	gate    AcceptGate
	refused atomic.Int64
	lastLog atomic.Int64 // unix nanoseconds of the last log line
	// pauses counts the pauses waited out; closed ends a pause's wait
	// when the listener is closed (shutdown must not wait for it).
	pauses    atomic.Int64
	closed    chan struct{}
	closeOnce sync.Once
}

// AcceptGate says how long a ConnLimit should hold off accepting
// (*Server is one: WithShedAcceptPause).
type AcceptGate interface {
	AcceptPause() time.Duration
}

// ConnOption configures LimitConnections.
type ConnOption func(*ConnLimit)

// WithAcceptGate pauses accepting while g says so.
func WithAcceptGate(g AcceptGate) ConnOption { return func(l *ConnLimit) { l.gate = g } }

// LimitConnections bounds ln to max connections open at once (max < 1:
// DefaultMaxConnections); logger (nil: slog.Default) says, at most once
// per shedLogEvery, that connections are being refused.
func LimitConnections(ln net.Listener, max int, logger *slog.Logger, opts ...ConnOption) *ConnLimit {
	if max < 1 {
		max = DefaultMaxConnections
	}
	if logger == nil {
		logger = slog.Default()
	}
	l := &ConnLimit{Listener: ln, slots: make(chan struct{}, max), logger: logger, closed: make(chan struct{})}
	for _, o := range opts {
		o(l)
	}
	return l
}

// Accept returns the next connection within the limit, once no pause
// holds it off.
func (l *ConnLimit) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		// Asked after the accept, which may have been waiting since before
		// the pause began: the connection is held, unread, until it ends.
		if err := l.waitGate(); err != nil {
			_ = c.Close()
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitedConn{Conn: c, limit: l}, nil
		default:
		}
		_ = c.Close()
		n := l.refused.Add(1)
		now := time.Now().UnixNano()
		if last := l.lastLog.Load(); now-last >= int64(shedLogEvery) && l.lastLog.CompareAndSwap(last, now) {
			l.logger.Warn("connections refused: at the connection limit", "open", cap(l.slots), "refused_total", n)
		}
	}
}

// waitGate waits out the gate's pause, and asks again at its end rather
// than trust its own timer to the nanosecond; net.ErrClosed once the
// listener closes.
func (l *ConnLimit) waitGate() error {
	if l.gate == nil {
		return nil
	}
	var t *time.Timer
	for {
		d := l.gate.AcceptPause()
		if d <= 0 {
			return nil
		}
		l.pauses.Add(1)
		if t == nil {
			t = time.NewTimer(d)
			defer t.Stop()
		} else {
			t.Reset(d)
		}
		select {
		case <-t.C:
		case <-l.closed:
			return net.ErrClosed
		}
	}
}

// Close closes the listener and ends a pause's wait.
func (l *ConnLimit) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// Open is how many connections are open; Refused how many were closed at
// once for the limit since the start; Paused how many times Accept waited
// for its gate (a pause the gate extended while Accept waited counts
// again).
func (l *ConnLimit) Open() int      { return len(l.slots) }
func (l *ConnLimit) Refused() int64 { return l.refused.Load() }
func (l *ConnLimit) Paused() int64  { return l.pauses.Load() }

// Collectors are the limit's metrics: the connections open, the limit,
// and the connections refused for it. A caller refused here sees its
// connection closed, never a 503, so without them an operator would see
// such refusals only in the log's line every shedLogEvery.
func (l *ConnLimit) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "credgate_connections_open", Help: "Connections open on the API listener (server.addr).",
		}, func() float64 { return float64(len(l.slots)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "credgate_connections_max", Help: "The most connections the API listener keeps open at once (server.max_connections).",
		}, func() float64 { return float64(cap(l.slots)) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "credgate_connections_refused_total",
			Help: "Connections the API listener closed unread because server.max_connections were open.",
		}, func() float64 { return float64(l.refused.Load()) }),
	}
}

// LimitConnections is the package's LimitConnections for this server's
// API listener: its logger, its load shedding as the accept gate
// (WithShedAcceptPause), and the limit's metrics in its registry.
func (s *Server) LimitConnections(ln net.Listener, max int) (*ConnLimit, error) {
	l := LimitConnections(ln, max, s.logger, WithAcceptGate(s))
	cs := l.Collectors()
	for i, c := range cs {
		if err := s.registry.Register(c); err != nil {
			for _, r := range cs[:i] {
				s.registry.Unregister(r)
			}
			return nil, fmt.Errorf("connection limit's metrics: %w", err)
		}
	}
	return l, nil
}

// limitedConn gives its place back when it is closed, once, however often
// Close is called.
type limitedConn struct {
	net.Conn
	limit *ConnLimit
	once  sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { <-c.limit.slots })
	return err
}
