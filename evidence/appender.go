package evidence

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/credgate/credgate/internal/telemetry/spans"
)

// Sink commits a batch of records durably and in order, assigning them
// consecutive indexes from the returned first one. Nothing is committed on
// error.
type Sink interface {
	AppendBatch(ctx context.Context, recs []Record) (first uint64, err error)
}

// LeafSink is a Sink that takes each record's leaf hash (LeafHash)
// computed ahead of the commit. Given one (WithLeafSink), the appender
// computes the hash in the caller's goroutine, before the record is queued,
// so that the next batch is formed and hashed while the previous one is
// being committed, and the commit itself does only what needs the end of
// the log.
type LeafSink interface {
	Sink
	// AppendLeaves is AppendBatch with leaves[i] == LeafHash(recs[i]).
	AppendLeaves(ctx context.Context, recs []Record, leaves [][HashSize]byte) (first uint64, err error)
}

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("evidence appender closed")

// ErrUnavailable wraps every failure to commit a batch: the records were
// not recorded (or not known to be), so nothing may be answered on them.
// credgate fails closed: no answer leaves without its evidence.
var ErrUnavailable = errors.New("evidence log unavailable")

// Appender batches concurrent appends into one durable commit (group
// commit): while one batch is being committed, new records queue up and go
// together in the next. Throughput is then bounded by records per commit,
// not by the disk's sync rate, and no caller waits for a timer.
type Appender struct {
	sink Sink
	// leafSink, when set, commits instead of sink, with the leaves.
	leafSink LeafSink
	maxBatch int
	// commitTimeout bounds one batch's commit, so that a database that
	// stops answering fails the waiting requests instead of hanging them.
	commitTimeout time.Duration
	reqs          chan *appendReq
	done          chan struct{}
	closeMu       sync.RWMutex
	closed        bool
	// committed is called after each batch commits (metrics, tests); it
	// must not block for long. The Merkle tree is not grown here but in the
	// sink's transaction, so that it commits or rolls back with the records.
	committed func(recs []Record)
}

type appendReq struct {
	rec Record
	// leaf is LeafHash(rec), computed before the record is queued.
	leaf [HashSize]byte
	ctx  context.Context
	res  chan appendRes
}

type appendRes struct {
	rec Record
	err error
}

// Option configures an Appender.
type Option func(*Appender)

// WithMaxBatch caps how many records go in one commit (default 512).
func WithMaxBatch(n int) Option {
	return func(a *Appender) {
		if n > 0 {
			a.maxBatch = n
		}
	}
}

// WithCommitTimeout bounds how long one batch's commit may take (default
// 10s); past it the batch fails with ErrUnavailable.
func WithCommitTimeout(d time.Duration) Option {
	return func(a *Appender) {
		if d > 0 {
			a.commitTimeout = d
		}
	}
}

// WithLeafSink commits through ls.AppendLeaves, the leaf hashes computed
// before each record queues. It is an explicit option, not found by a type
// assertion on the Sink: a wrapper that embeds a store and overrides only
// AppendBatch (to fail it, to count commits) must not be bypassed.
func WithLeafSink(ls LeafSink) Option {
	return func(a *Appender) { a.leafSink = ls }
}

// WithCommitHook registers fn to be called with every committed batch,
// records carrying their assigned indexes.
func WithCommitHook(fn func(recs []Record)) Option {
	return func(a *Appender) { a.committed = fn }
}

// NewAppender starts the appender's commit loop.
func NewAppender(sink Sink, opts ...Option) *Appender {
	a := &Appender{sink: sink, maxBatch: 512, commitTimeout: 10 * time.Second, done: make(chan struct{})}
	for _, o := range opts {
		o(a)
	}
	a.reqs = make(chan *appendReq, a.maxBatch*4)
	go a.loop()
	return a
}

// Append seals each record (salt and hash) that is not sealed, waits until
// all are durably committed, and returns them with their indexes, in order.
// If ctx ends first some records may still be committed; the caller then has
// no receipt and must not answer as if it had.
//
// Append waits at most the commit bound in all, queueing included: behind
// a batch stuck on a frozen database, a record would otherwise wait for
// that batch's bound and then for its own. Past it the error wraps
// ErrUnavailable.
func (a *Appender) Append(ctx context.Context, recs ...Record) (_ []Record, err error) {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, a.commitTimeout)
	defer cancel()
	defer func() {
		if err != nil && parent.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("commit evidence: %w: no commit within %s", ErrUnavailable, a.commitTimeout)
		}
	}()
	reqs := make([]*appendReq, len(recs))
	for i, rec := range recs {
		if rec.Salt == nil {
			if err := rec.Seal(); err != nil {
				return nil, fmt.Errorf("seal evidence record: %w", err)
			}
		}
		// A record the log cannot encode would fail its whole batch: refuse
		// it here, alone.
		if err := rec.Validate(); err != nil {
			return nil, err
		}
		reqs[i] = &appendReq{rec: rec, ctx: ctx, res: make(chan appendRes, 1)}
		if a.leafSink != nil {
			reqs[i].leaf = LeafHash(rec)
		}
	}
	a.closeMu.RLock()
	if a.closed {
		a.closeMu.RUnlock()
		return nil, ErrClosed
	}
	for _, req := range reqs {
		select {
		case a.reqs <- req:
		case <-ctx.Done():
			a.closeMu.RUnlock()
			return nil, ctx.Err()
		}
	}
	a.closeMu.RUnlock()
	out := make([]Record, len(reqs))
	var firstErr error
	for i, req := range reqs {
		select {
		case r := <-req.res:
			if r.err != nil && firstErr == nil {
				firstErr = r.err
			}
			out[i] = r.rec
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// Queued is how many records wait for the next commit: formed and hashed
// while the current one is being committed.
func (a *Appender) Queued() int { return len(a.reqs) }

// Close stops accepting records, commits what is queued and returns when
// the loop has finished.
func (a *Appender) Close() {
	a.closeMu.Lock()
	if !a.closed {
		a.closed = true
		close(a.reqs)
	}
	a.closeMu.Unlock()
	<-a.done
}

func (a *Appender) loop() {
	defer close(a.done)
	batch := make([]*appendReq, 0, a.maxBatch)
	recs := make([]Record, 0, a.maxBatch)
	leaves := make([][HashSize]byte, 0, a.maxBatch)
	for first := range a.reqs {
		batch = append(batch[:0], first)
		// Take whatever queued while the previous batch was committing.
	drain:
		for len(batch) < a.maxBatch {
			select {
			case r, ok := <-a.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		recs, leaves = recs[:0], leaves[:0]
		live := batch[:0]
		for _, r := range batch {
			// A caller that already gave up gets no record written for it.
			if r.ctx.Err() != nil {
				r.res <- appendRes{err: r.ctx.Err()}
				continue
			}
			live = append(live, r)
			recs = append(recs, r.rec)
			leaves = append(leaves, r.leaf)
		}
		if len(recs) == 0 {
			continue
		}
		// The commit must not be cut short by one caller's deadline: others
		// share it.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(live[0].ctx), a.commitTimeout)
		start := time.Now()
		var (
			idx uint64
			err error
		)
		if a.leafSink != nil {
			idx, err = a.leafSink.AppendLeaves(cctx, recs, leaves)
		} else {
			idx, err = a.sink.AppendBatch(cctx, recs)
		}
		cancel()
		traceBatch(live, len(recs), time.Since(start))
		if err != nil {
			err = fmt.Errorf("commit evidence batch: %w: %w", ErrUnavailable, err)
			for _, r := range live {
				r.res <- appendRes{err: err}
			}
			continue
		}
		for i := range recs {
			recs[i].Index = idx + uint64(i)
		}
		if a.committed != nil {
			a.committed(recs)
		}
		for i, r := range live {
			r.res <- appendRes{rec: recs[i]}
		}
	}
}

// traceBatch tells each request's span (when it is being traced) how many
// records shared its commit and how long the commit took, so that a slow
// check shows whether it waited on the disk or in the queue.
func traceBatch(live []*appendReq, size int, took time.Duration) {
	for _, r := range live {
		if sp := trace.SpanFromContext(r.ctx); sp.IsRecording() {
			sp.SetAttributes(spans.BatchSize.Int(size), spans.CommitSeconds.Float64(took.Seconds()))
		}
	}
}
