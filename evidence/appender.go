package evidence

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Sink commits a batch of records durably and in order, assigning them
// consecutive indexes from the returned first one. Nothing is committed on
// error.
type Sink interface {
	AppendBatch(ctx context.Context, recs []Record) (first uint64, err error)
}

// Receipt tells a caller where its record landed.
type Receipt struct {
	Index uint64
	Hash  [32]byte
}

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("evidence appender closed")

// Appender batches concurrent appends into one durable commit (group
// commit): while one batch is being committed, new records queue up and go
// together in the next. Throughput is then bounded by records per commit,
// not by the disk's sync rate, and no caller waits for a timer.
type Appender struct {
	sink     Sink
	maxBatch int
	reqs     chan *appendReq
	done     chan struct{}
	closeMu  sync.RWMutex
	closed   bool
	// committed is called after each batch commits (for the Merkle tree,
	// metrics); it must not block for long.
	committed func(recs []Record)
}

type appendReq struct {
	rec Record
	ctx context.Context
	res chan appendRes
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

// WithCommitHook registers fn to be called with every committed batch,
// records carrying their assigned indexes.
func WithCommitHook(fn func(recs []Record)) Option {
	return func(a *Appender) { a.committed = fn }
}

// NewAppender starts the appender's commit loop.
func NewAppender(sink Sink, opts ...Option) *Appender {
	a := &Appender{sink: sink, maxBatch: 512, done: make(chan struct{})}
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
func (a *Appender) Append(ctx context.Context, recs ...Record) ([]Record, error) {
	reqs := make([]*appendReq, len(recs))
	for i, rec := range recs {
		if rec.Salt == nil {
			if err := rec.Seal(); err != nil {
				return nil, fmt.Errorf("seal evidence record: %w", err)
			}
		}
		reqs[i] = &appendReq{rec: rec, ctx: ctx, res: make(chan appendRes, 1)}
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
		recs = recs[:0]
		live := batch[:0]
		for _, r := range batch {
			// A caller that already gave up gets no record written for it.
			if r.ctx.Err() != nil {
				r.res <- appendRes{err: r.ctx.Err()}
				continue
			}
			live = append(live, r)
			recs = append(recs, r.rec)
		}
		if len(recs) == 0 {
			continue
		}
		// The commit must not be cut short by one caller's deadline: others
		// share it.
		idx, err := a.sink.AppendBatch(context.WithoutCancel(live[0].ctx), recs)
		if err != nil {
			err = fmt.Errorf("commit evidence batch: %w", err)
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
