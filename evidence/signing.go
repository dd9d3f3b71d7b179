package evidence

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// roundTimeout bounds one shared signing round: its callers may have
// deadlines of their own, but the round serves them all and must not be
// cut short by the first to leave.
const roundTimeout = 10 * time.Second

// signRounds coalesces on-demand signing the way the appender coalesces
// commits: one round signs at a time; callers that arrive meanwhile wait
// together for the next round, which reads the tree after they arrived
// and so covers their records. However many callers wait, one signature
// and one insert serve them, and nobody waits out a timer.
type signRounds struct {
	mu       sync.Mutex
	inflight *signRound
	next     *signRound
}

type signRound struct {
	done chan struct{}
	cp   StoredCheckpoint
	err  error
}

// remember makes cp the checkpoint Covering answers from memory, when it
// is larger than the one known.
func (l *Log) remember(cp StoredCheckpoint) {
	for {
		old := l.known.Load()
		if old != nil && old.Size >= cp.Size {
			return
		}
		c := cp
		if l.known.CompareAndSwap(old, &c) {
			return
		}
	}
}

// signCovering waits for a signing round whose checkpoint covers the first
// size records (the caller's record is committed before it asks, so the
// first round that starts after it joined does).
func (l *Log) signCovering(ctx context.Context, size uint64) (StoredCheckpoint, error) {
	for {
		r := l.joinRound(ctx)
		select {
		case <-r.done:
		case <-ctx.Done():
			return StoredCheckpoint{}, ctx.Err()
		}
		if r.err != nil {
			return StoredCheckpoint{}, r.err
		}
		if r.cp.Size >= size {
			return r.cp, nil
		}
		if head, err := l.store.TreeHead(ctx); err != nil {
			return StoredCheckpoint{}, fmt.Errorf("read tree head: %w", err)
		} else if head.Size < size {
			return StoredCheckpoint{}, fmt.Errorf("%w: record %d is not in the committed tree of %d", ErrTreeCorrupt, size-1, head.Size)
		}
		// The round read the tree before the record was in it: the next.
	}
}

// joinRound returns the round the caller waits for: a new one started now
// if none is signing, else the one that follows the signing one.
func (l *Log) joinRound(ctx context.Context) *signRound {
	rs := &l.rounds
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.inflight == nil {
		rs.inflight = &signRound{done: make(chan struct{})}
		go l.runRound(context.WithoutCancel(ctx), rs.inflight)
		return rs.inflight
	}
	if rs.next == nil {
		rs.next = &signRound{done: make(chan struct{})}
	}
	return rs.next
}

// runRound signs the tree as it is now (if it grew since the latest
// checkpoint), hands the checkpoint to the round's callers and starts the
// round queued behind it.
func (l *Log) runRound(ctx context.Context, r *signRound) {
	for r != nil {
		rctx, cancel := context.WithTimeout(ctx, roundTimeout)
		r.cp, r.err = l.checkpointGrowth(rctx, true)
		cancel()
		close(r.done)
		rs := &l.rounds
		rs.mu.Lock()
		rs.inflight, rs.next = rs.next, nil
		r = rs.inflight
		rs.mu.Unlock()
	}
}
