package evidence

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
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

// ErrRefused is wrapped (with ErrUnavailable) in the error of an Append
// whose record the log's database refused for what it holds (Refused):
// appended again unchanged, it is refused again. The records committed in
// the same group were committed without it (WithCommitsInFlight(1), the
// default: see commitApart).
var ErrRefused = errors.New("evidence record refused by the log's database")

// Refused reports whether err is a refusal of the records themselves, not
// of the database being away: ErrRefused, or an error of the database
// whose SQLSTATE is of class 22 (data exception: text PostgreSQL cannot
// hold, a value out of range) or 23 (integrity constraint violation: a
// record id already in the log). A statement failing so rolls back its
// transaction: nothing of the batch was committed. (SQLite's errors carry
// no SQLSTATE; SQLite stores whatever JSON text a body holds.)
func Refused(err error) bool {
	if errors.Is(err, ErrRefused) {
		return true
	}
	var st interface{ SQLState() string }
	if !errors.As(err, &st) {
		return false
	}
	s := st.SQLState()
	return strings.HasPrefix(s, "22") || strings.HasPrefix(s, "23")
}

// ErrStalled is wrapped (with ErrUnavailable) in the error of an Append
// refused at once because the log is stalled: a wait for a commit ran past
// its bound, and no commit has succeeded since. Nothing was queued.
var ErrStalled = errors.New("evidence log stalled")

// DefaultStallProbe is how often a stalled appender lets one Append
// through to the log, unless WithStallProbe says otherwise.
const DefaultStallProbe = 500 * time.Millisecond

// Appender batches concurrent appends into one durable commit (group
// commit): while one batch is being committed, new records queue up and go
// together in the next. Throughput is then bounded by records per commit,
// not by the disk's sync rate, and no caller waits for a timer. With a
// sink that says when a batch is on its way (BatchSent), the next batch is
// sent behind it without waiting for its commit, so that the database
// starts on it as soon as the first commits (WithCommitsInFlight, off by
// default).
type Appender struct {
	sink Sink
	// leafSink, when set, commits instead of sink, with the leaves.
	leafSink LeafSink
	maxBatch int
	// inFlight is how many batches may be in the sink at once (a second
	// only once the sink said the first is on its way: BatchSent).
	inFlight int
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
	// observer, when set, is told each record's wait and each batch's
	// commit time (WithCommitObserver).
	observer CommitObserver
	// lastEnd is when the last commit ended (unix nanoseconds), kept only
	// with an observer, for the next batch's start lag.
	lastEnd atomic.Int64
	// stalled is set when a wait for a commit runs past its bound, and
	// cleared when a commit succeeds. Meanwhile Append fails at once
	// (ErrStalled) instead of queueing behind a database that does not
	// answer: on a frozen database every check waited its whole bound,
	// and a replica answered about 100 checks a second from its spool.
	// One Append every probeEvery goes through (lastProbe, unix
	// nanoseconds) to find the database back.
	stalled    atomic.Bool
	lastProbe  atomic.Int64
	probeEvery time.Duration
	// commits counts the commits that succeeded. A wait marks the log
	// stalled only if none has succeeded since it began: its goroutine
	// can run its bound's case after the commit that would have cleared
	// the mark (a loaded machine, or select choosing the bound over a
	// result that arrived with it), and a mark set then stayed until the
	// next probe, refusing every check meanwhile.
	commits atomic.Uint64
}

type appendReq struct {
	rec Record
	// leaf is LeafHash(rec), computed before the record is queued.
	leaf [HashSize]byte
	ctx  context.Context
	// res is shared by the records of one Append call (buffered for all
	// of them); each result names its record's slot in the call.
	res  chan appendRes
	slot int
	// gaveUp is set once the caller stopped waiting (its commit bound
	// passed, or its context ended): nothing is written for it after.
	gaveUp atomic.Bool
	// queued is when the record was queued; read only with an observer.
	queued time.Time
}

type appendRes struct {
	rec  Record
	err  error
	slot int
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

// DefaultCommitsInFlight is how many batches may be committing at once
// unless WithCommitsInFlight says otherwise.
const DefaultCommitsInFlight = 1

// WithCommitsInFlight sets how many batches may be committing at once
// (default 1): a batch is handed to the sink while the one before it is
// still committing only if the sink said that one is on its way
// (BatchSent), as PostgreSQL's store does; otherwise one at a time. The
// default is one: on two shared cores, two in flight gave PostgreSQL no
// more checks per second, rather fewer (docs/PERFORMANCE.md, "PostgreSQL:
// two commits in flight").
func WithCommitsInFlight(n int) Option {
	return func(a *Appender) {
		if n > 0 {
			a.inFlight = n
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

// WithStallProbe sets how often a stalled appender lets one Append
// through to the log to find it back (default DefaultStallProbe); the
// others fail at once with ErrStalled until a commit succeeds.
func WithStallProbe(d time.Duration) Option {
	return func(a *Appender) {
		if d > 0 {
			a.probeEvery = d
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

// CommitObserver is told where a record's time in the appender goes: the
// wait from its Append to the start of its batch's commit (behind the
// commit in flight, then filling its batch), and the batch's commit. Both
// are called by whatever commits the batch — with two commits in flight,
// two goroutines at once — before its callers are answered, so they must
// be safe for concurrent use and must not block.
type CommitObserver interface {
	// Waited is called once per record handed to the sink: wait is the
	// time from its Append to the start of its batch's commit, total to
	// the commit's end.
	Waited(wait, total time.Duration)
	// Committed is called once per batch with its records, its start lag
	// and the time the sink took to commit it (failed commits too: err is
	// then set). The lag runs from when the batch could have started — its
	// oldest record queued, or the commit before it ended, whichever is
	// later — to its start: time the commit loop waited for a CPU (with
	// two commits in flight, also for the batch to fill).
	Committed(records int, lag, took time.Duration, err error)
}

// WithCommitObserver reports every record's wait and every batch's
// commit time to o (serve turns them into histograms). Without it the
// appender reads no clock per record.
func WithCommitObserver(o CommitObserver) Option {
	return func(a *Appender) { a.observer = o }
}

// NewAppender starts the appender's commit loop.
func NewAppender(sink Sink, opts ...Option) *Appender {
	a := &Appender{sink: sink, maxBatch: 512, inFlight: DefaultCommitsInFlight, commitTimeout: 10 * time.Second,
		probeEvery: DefaultStallProbe, done: make(chan struct{})}
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
// ErrUnavailable. Once a wait has run past its bound, Append fails at once
// (ErrStalled, nothing queued) until a commit succeeds, but for a probe
// every WithStallProbe, which waits as usual.
func (a *Appender) Append(ctx context.Context, recs ...Record) ([]Record, error) {
	return a.AppendWithin(ctx, a.commitTimeout, recs...)
}

// AppendWithin is Append waiting at most d in all (or the commit bound,
// if that is shorter). It is how a caller with a bound of its own, shorter
// than a commit's (the spool's: service.SpoolingLog), bounds its wait: a
// context with that deadline would cost a context, a timer and its
// registration with the caller's context on every check, beside the timer
// the appender runs anyway.
func (a *Appender) AppendWithin(ctx context.Context, d time.Duration, recs ...Record) (_ []Record, err error) {
	d = min(d, a.commitTimeout)
	// The bound is a timer rather than a context.WithTimeout: on the check
	// path the derived context, its timer and its Done channel were five
	// allocations per call; the loop learns that a caller gave up from
	// gaveUp instead of from the context.
	bound := time.NewTimer(d)
	defer bound.Stop()
	defer func() {
		// A commit that ran out of its own bound says so as the Append
		// bound does (ErrUnavailable, not a deadline the caller set).
		if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = boundErr(ctx, d)
		}
	}()
	// One allocation for the requests and one channel for their results,
	// where each record had a request and a channel of its own.
	reqs := make([]appendReq, len(recs))
	res := make(chan appendRes, len(recs))
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
		r := &reqs[i]
		r.rec, r.ctx, r.res, r.slot = rec, ctx, res, i
		if a.leafSink != nil {
			r.leaf = LeafHash(rec)
		}
	}
	if a.stalled.Load() && !a.probe() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// Nothing queued, so nothing is committed for it later: the
		// caller's fallback (the spool) or its refusal is all there is.
		return nil, fmt.Errorf("commit evidence: %w: %w: a commit ran past its bound, none has succeeded since", ErrUnavailable, ErrStalled)
	}
	if a.observer != nil {
		// After sealing and hashing: the wait counts the queue only.
		now := time.Now()
		for i := range reqs {
			reqs[i].queued = now
		}
	}
	// giveUp tells the loop that no record of this call is waited for.
	giveUp := func(err error) ([]Record, error) {
		for i := range reqs {
			reqs[i].gaveUp.Store(true)
		}
		return nil, err
	}
	began := a.commits.Load()
	a.closeMu.RLock()
	if a.closed {
		a.closeMu.RUnlock()
		return nil, ErrClosed
	}
	for i := range reqs {
		select {
		case a.reqs <- &reqs[i]:
		case <-ctx.Done():
			a.closeMu.RUnlock()
			return giveUp(ctx.Err())
		case <-bound.C:
			a.closeMu.RUnlock()
			a.stall(ctx, began)
			return giveUp(boundErr(ctx, d))
		}
	}
	a.closeMu.RUnlock()
	out := make([]Record, len(reqs))
	var firstErr error
	for range reqs {
		select {
		case r := <-res:
			if r.err != nil && firstErr == nil {
				firstErr = r.err
			}
			out[r.slot] = r.rec
		case <-ctx.Done():
			return giveUp(ctx.Err())
		case <-bound.C:
			a.stall(ctx, began)
			return giveUp(boundErr(ctx, d))
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// stall marks the log stalled: a wait that began when began commits had
// succeeded ran past its bound (unless the caller's own context ended
// first, or a commit has succeeded since). The next probe comes a probe
// interval from now.
func (a *Appender) stall(ctx context.Context, began uint64) {
	if ctx.Err() != nil || a.commits.Load() != began {
		return
	}
	a.lastProbe.Store(time.Now().UnixNano())
	a.stalled.Store(true)
	// A commit that succeeded between the test above and the mark has
	// cleared before it: undo the mark (answer counts, then clears).
	if a.commits.Load() != began {
		a.stalled.Store(false)
	}
}

// probe reports whether this Append is the one let through to a stalled
// log: the first a probe interval after the last.
func (a *Appender) probe() bool {
	last := a.lastProbe.Load()
	now := time.Now().UnixNano()
	return now-last >= int64(a.probeEvery) && a.lastProbe.CompareAndSwap(last, now)
}

// Stalled reports whether Append is failing at once (ErrStalled) because
// a wait for a commit ran past its bound and none has succeeded since.
func (a *Appender) Stalled() bool { return a.stalled.Load() }

// boundErr is the error of an Append whose bound d passed: the caller's
// own error if its context ended meanwhile, else ErrUnavailable.
func boundErr(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("commit evidence: %w: no commit within %s", ErrUnavailable, d)
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

// flight is one batch handed to the sink.
type flight struct {
	// size is how many records the batch holds.
	size int
	// sent is closed once the sink says the batch is on its way
	// (BatchSent), or once the commit is over.
	sent     chan struct{}
	sentOnce sync.Once
	// done is closed once the batch's callers have their results.
	done chan struct{}
}

func (f *flight) markSent() { f.sentOnce.Do(func() { close(f.sent) }) }

func (a *Appender) loop() {
	defer close(a.done)
	// inFlight are the batches handed to the sink and not yet answered,
	// oldest first.
	var inFlight []*flight
	for {
		// A batch is handed over only once the one before it is on its
		// way (a sink that never says so has one commit at a time), and
		// never beyond the depth: the records arriving meanwhile queue and
		// go together.
		for len(inFlight) >= a.inFlight {
			<-inFlight[0].done
			inFlight = inFlight[1:]
		}
		if n := len(inFlight); n > 0 {
			<-inFlight[n-1].sent
		}
		first, ok := <-a.reqs
		if !ok {
			break
		}
		batch := append(make([]*appendReq, 0, min(a.maxBatch, 1+len(a.reqs))), first)
		// Take whatever queued while the previous batch was committing.
		batch = a.drain(batch)
		// While the batch before is still committing, this one fills up to
		// that one's size first: sent at once, it would hold the one or two
		// records that arrived since, and cost the database a commit of its
		// own for them. It goes as soon as it is that large, or when the
		// one before has committed, whichever comes first.
		if n := len(inFlight); n > 0 {
			last := inFlight[n-1]
		fill:
			for len(batch) < min(last.size, a.maxBatch) {
				select {
				case r, ok := <-a.reqs:
					if !ok {
						break fill
					}
					batch = append(batch, r)
				case <-last.done:
					batch = a.drain(batch)
					break fill
				}
			}
		}
		recs := make([]Record, 0, len(batch))
		var leaves [][HashSize]byte
		if a.leafSink != nil {
			leaves = make([][HashSize]byte, 0, len(batch))
		}
		live := batch[:0]
		for _, r := range batch {
			// A caller that already gave up gets no record written for it.
			if err := r.ctx.Err(); err != nil || r.gaveUp.Load() {
				if err == nil {
					err = ErrUnavailable
				}
				r.res <- appendRes{err: err, slot: r.slot}
				continue
			}
			live = append(live, r)
			recs = append(recs, r.rec)
			if a.leafSink != nil {
				leaves = append(leaves, r.leaf)
			}
		}
		if len(recs) == 0 {
			continue
		}
		f := &flight{size: len(recs), sent: make(chan struct{}), done: make(chan struct{})}
		var prev *flight
		if n := len(inFlight); n > 0 {
			prev = inFlight[n-1]
		}
		inFlight = append(inFlight, f)
		if a.inFlight == 1 {
			// One at a time: committing here spares each batch two
			// goroutine hand-offs, which on busy cores cost its callers
			// latency.
			a.commit(f, prev, live, recs, leaves)
			continue
		}
		go a.commit(f, prev, live, recs, leaves)
	}
	for _, f := range inFlight {
		<-f.done
	}
}

// drain adds to batch the records already queued, up to the batch limit.
func (a *Appender) drain(batch []*appendReq) []*appendReq {
	for len(batch) < a.maxBatch {
		select {
		case r, ok := <-a.reqs:
			if !ok {
				return batch
			}
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// commit commits one batch and answers its callers, after the callers of
// the batch before it (prev), so that commit hooks run one at a time and
// in the log's order.
func (a *Appender) commit(f, prev *flight, live []*appendReq, recs []Record, leaves [][HashSize]byte) {
	defer close(f.done)
	defer f.markSent()
	// The commit must not be cut short by one caller's deadline: others
	// share it.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(live[0].ctx), a.commitTimeout)
	if a.inFlight > 1 {
		cctx = context.WithValue(cctx, sentKey{}, f.markSent)
	}
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
	took := time.Since(start)
	traceBatch(live, len(recs), took)
	if o := a.observer; o != nil {
		prevEnd := time.Unix(0, a.lastEnd.Swap(start.Add(took).UnixNano()))
		oldest := live[0].queued
		for _, r := range live {
			w := start.Sub(r.queued)
			o.Waited(w, w+took)
			if r.queued.Before(oldest) {
				oldest = r.queued
			}
		}
		ready := oldest
		if prevEnd.After(ready) {
			ready = prevEnd
		}
		o.Committed(len(recs), max(0, start.Sub(ready)), took, err)
	}
	if prev != nil {
		<-prev.done
	}
	if err != nil && len(live) > 1 && a.inFlight == 1 && Refused(err) {
		// The database refused the batch for what one of its records
		// holds: the others must not fail (nor, checks, be spooled) with
		// it. One commit at a time, nothing is behind this batch in the
		// database, so its parts commit in the log's order.
		half := len(live) / 2
		a.commitApart(live[:half], recs[:half], leavesOf(leaves, 0, half))
		a.commitApart(live[half:], recs[half:], leavesOf(leaves, half, len(live)))
		return
	}
	a.answer(live, recs, idx, err)
}

// answer answers the callers of a batch that committed at idx, or failed
// with err.
func (a *Appender) answer(live []*appendReq, recs []Record, idx uint64, err error) {
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			// The commit ran past its own bound.
			a.stall(context.Background(), a.commits.Load())
		}
		if Refused(err) {
			err = fmt.Errorf("commit evidence batch: %w: %w: %w", ErrUnavailable, ErrRefused, err)
		} else {
			err = fmt.Errorf("commit evidence batch: %w: %w", ErrUnavailable, err)
		}
		for _, r := range live {
			r.res <- appendRes{err: err, slot: r.slot}
		}
		return
	}
	// The database answers again: no more short cut. Counted first, so
	// that a wait whose bound passes from now on sees it.
	a.commits.Add(1)
	if a.stalled.Load() {
		a.stalled.Store(false)
	}
	for i := range recs {
		recs[i].Index = idx + uint64(i)
	}
	if a.committed != nil {
		a.committed(recs)
	}
	for i, r := range live {
		r.res <- appendRes{rec: recs[i], slot: r.slot}
	}
}

// commitApart commits part of a batch the database refused as a whole,
// and answers its callers: in one commit if it can, else (refused again)
// in halves, down to the record the database refuses on its own, whose
// caller alone gets the refusal (ErrRefused). A group of n records with k
// refused ones costs about 2k·log2(n) commits, and the parts commit in
// their order in the log. Callers that gave up meanwhile get no record
// written, as in the loop.
func (a *Appender) commitApart(live []*appendReq, recs []Record, leaves [][HashSize]byte) {
	keep := make([]*appendReq, 0, len(live))
	kept := make([]Record, 0, len(live))
	var keptLeaves [][HashSize]byte
	for i, r := range live {
		if err := r.ctx.Err(); err != nil || r.gaveUp.Load() {
			if err == nil {
				err = ErrUnavailable
			}
			r.res <- appendRes{err: err, slot: r.slot}
			continue
		}
		keep, kept = append(keep, r), append(kept, recs[i])
		if leaves != nil {
			keptLeaves = append(keptLeaves, leaves[i])
		}
	}
	if len(keep) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(keep[0].ctx), a.commitTimeout)
	var (
		idx uint64
		err error
	)
	if a.leafSink != nil {
		idx, err = a.leafSink.AppendLeaves(cctx, kept, keptLeaves)
	} else {
		idx, err = a.sink.AppendBatch(cctx, kept)
	}
	cancel()
	if err != nil && len(keep) > 1 && Refused(err) {
		half := len(keep) / 2
		a.commitApart(keep[:half], kept[:half], leavesOf(keptLeaves, 0, half))
		a.commitApart(keep[half:], kept[half:], leavesOf(keptLeaves, half, len(keep)))
		return
	}
	a.answer(keep, kept, idx, err)
}

// leavesOf is leaves[i:j], nil without leaves.
func leavesOf(leaves [][HashSize]byte, i, j int) [][HashSize]byte {
	if leaves == nil {
		return nil
	}
	return leaves[i:j]
}

// sentKey carries, in the context a batch is committed under, what
// BatchSent calls.
type sentKey struct{}

// BatchSent tells the appender committing a batch under ctx that the
// batch is on its way to the database, so that the next batch may be sent
// behind it while it commits (WithCommitsInFlight). A sink calls it only
// if it guarantees that a batch sent after this one commits after it,
// never on top of it unless it landed, and its callers are still answered
// only once their own commit is acknowledged. A sink that never calls it
// has one commit in flight at a time. With any other context it does
// nothing.
func BatchSent(ctx context.Context) {
	if f, ok := ctx.Value(sentKey{}).(func()); ok {
		f()
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
