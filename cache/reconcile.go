package cache

import (
	"context"
	"time"
)

// pruneMark is a cursor this replica held at a time: once it is older than
// the retention, changes below it are pruned.
type pruneMark struct {
	at     time.Time
	cursor uint64
}

// Reconcile asks for a reading of the change log now (it does not wait).
func (t *Tier) Reconcile() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// ReconcileNow reads the change log once and waits for it (tests, and
// callers that need a confirmed state before going on).
func (t *Tier) ReconcileNow(ctx context.Context) error {
	if t.feed == nil {
		return ErrNoChangeFeed
	}
	return t.reconcileOnce(ctx)
}

// minKickGap spaces the readings that Reconcile asks for (the store's
// notices, mostly): a burst of commits elsewhere makes at most ten
// readings a second on each replica, not one per commit.
const minKickGap = 100 * time.Millisecond

func (t *Tier) reconcileLoop(ctx context.Context) {
	tick := time.NewTicker(t.cfg.reconcile)
	defer tick.Stop()
	gap := time.NewTimer(minKickGap)
	gap.Stop()
	defer gap.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-t.kick:
			if wait := minKickGap - time.Since(last); wait > 0 {
				gap.Reset(wait)
				select {
				case <-ctx.Done():
					return
				case <-gap.C:
				}
			}
		}
		last = time.Now()
		_ = t.reconcileOnce(ctx)
	}
}

// reconcileOnce reads the changes since the last reading, drops the
// subjects they name (in Redis, then here) and then records the reading's
// time as confirmed. A reading that fails confirms nothing: answers keep
// their age.
func (t *Tier) reconcileOnce(ctx context.Context) error {
	t.reconcileMu.Lock()
	defer t.reconcileMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, max(2*time.Second, t.cfg.reconcile))
	defer cancel()
	// Taken before the reading, and before the trust mark is read: what
	// the reading confirms is at least this fresh, and a mark raised
	// before it is known when it is confirmed.
	started := t.cfg.now()
	if t.redis != nil {
		t.redis.syncTrust(ctx)
	}
	if t.feed == nil {
		return ErrNoChangeFeed
	}
	if !t.haveCursor {
		c, err := t.feed.ChangeCursor(ctx)
		if err != nil {
			t.readingFailed(err)
			return err
		}
		// Sets loaded before the first cursor (the store came up late)
		// may predate changes the log will not report: drop them.
		t.flushLocal()
		t.cursor, t.haveCursor = c, true
		t.confirm(started)
		return nil
	}
	changes, next, lost, err := t.feed.SubjectChanges(ctx, t.cursor, t.cfg.changeLimit)
	if err != nil {
		t.readingFailed(err)
		return err
	}
	if lost {
		// Too many changes, or pruned ones: assume everything changed.
		// Redis may hold values of the subjects missed: the trust mark
		// goes to Redis at once, for every replica.
		if t.redis != nil {
			t.redis.distrust()
		}
		t.flushLocal()
		clear(t.seen)
		if t.redis != nil {
			t.redis.syncTrust(ctx)
		}
	} else {
		var subjects []string
		seen := make(map[int64]struct{}, len(changes))
		for _, c := range changes {
			seen[c.ID] = struct{}{}
			if _, dup := t.seen[c.ID]; !dup {
				subjects = append(subjects, c.Subject)
			}
		}
		t.seen = seen
		if subjects = uniq(subjects); len(subjects) > 0 {
			if t.redis != nil {
				t.redis.invalidate(ctx, subjects)
			}
			t.dropLocal(subjects, &t.stats.invalidatedReconcile)
		}
	}
	t.cursor = next
	t.confirm(started)
	t.prune(ctx, started)
	return nil
}

func (t *Tier) readingFailed(err error) {
	t.stats.reconcileErrors.Add(1)
	if !t.storeDown.Swap(true) {
		t.cfg.logger.Warn("cache: cannot read the change log; cached data is aging", "err", err)
	}
}

func (t *Tier) confirm(at time.Time) {
	t.stats.reconciles.Add(1)
	if t.storeDown.Swap(false) {
		t.cfg.logger.Info("cache: change log readable again")
	}
	t.confirmed.Store(at.UnixNano())
}

// prune deletes change log rows older than the retention, using a cursor
// this replica held that long ago (every transaction below it had ended
// then). A replica still reading from below it finds its reading lost
// and drops everything.
func (t *Tier) prune(ctx context.Context, now time.Time) {
	if n := len(t.marks); n == 0 || now.Sub(t.marks[n-1].at) >= t.cfg.pruneAfter/10 {
		t.marks = append(t.marks, pruneMark{at: now, cursor: t.cursor})
	}
	var before uint64
	for len(t.marks) > 1 && now.Sub(t.marks[0].at) >= t.cfg.pruneAfter {
		before = t.marks[0].cursor
		t.marks = t.marks[1:]
	}
	if before == 0 {
		return
	}
	if err := t.feed.PruneSubjectChanges(ctx, before); err != nil {
		t.cfg.logger.Warn("cache: pruning the change log failed", "err", err)
	}
}
