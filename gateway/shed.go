package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

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
)

// shedder is a bounded queue in front of the check path. Without it an
// offered load above capacity queues without limit in goroutines, buffers
// and the evidence appender: latency grows to seconds for everyone and
// memory with it. With it, a check past capacity is answered 503 with
// Retry-After at once, for the price of an atomic add, and the checks
// admitted keep their latency.
type shedder struct {
	slots   chan struct{}
	waiting atomic.Int64
	queue   int64
	shed    prometheus.Counter
	waits   prometheus.GaugeFunc
}

func newShedder(inFlight, queue int) *shedder {
	if inFlight < 1 {
		inFlight = DefaultChecksInFlight
	}
	if queue < 0 {
		queue = DefaultCheckQueue
	}
	sh := &shedder{slots: make(chan struct{}, inFlight), queue: int64(queue),
		shed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "credgate_checks_shed_total",
			Help: "Checks refused with 503 overloaded because every slot was busy and the queue full.",
		})}
	sh.waits = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "credgate_checks_waiting", Help: "Checks waiting for a slot (load shedding's queue).",
	}, func() float64 { return float64(max(0, sh.waiting.Load())) })
	return sh
}

func (sh *shedder) collectors() []prometheus.Collector {
	return []prometheus.Collector{sh.shed, sh.waits}
}

// WithCheckCapacity sets how many checks (single or batch requests) run at
// once and how many more may wait for a slot; past both, a check is
// answered 503 overloaded with Retry-After (defaults DefaultChecksInFlight
// and DefaultCheckQueue).
func WithCheckCapacity(inFlight, queue int) Option {
	return func(s *Server) { s.shedding = newShedder(inFlight, queue) }
}

// admit is the middleware: it holds a slot for the rest of the chain.
// It runs before authentication and the quota, so a refused request costs
// neither a token check nor a unit of quota.
func (sh *shedder) admit(c *gin.Context) {
	select {
	case sh.slots <- struct{}{}:
	default:
		if sh.waiting.Add(1) > sh.queue {
			sh.waiting.Add(-1)
			sh.refuse(c)
			return
		}
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

func (sh *shedder) refuse(c *gin.Context) {
	sh.shed.Inc()
	c.Header("Retry-After", "1")
	fail(c, fmt.Errorf("%w: %d checks in progress and %d waiting; retry after Retry-After seconds",
		ErrOverloaded, cap(sh.slots), sh.queue))
}

// overloadedProblem is ErrOverloaded's answer (problem.go).
func overloadedProblem(err error) *Problem {
	return problem(http.StatusServiceUnavailable, "overloaded", "Overloaded", err.Error())
}
