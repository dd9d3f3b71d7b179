package cache

import (
	"context"
	"time"
)

// ChangeNotifier tells the tier, soon after a commit, that the store's
// change log has grown, so that the tier reads it then rather than at its
// next tick. It covers the writers whose changes reach the tier through the
// change log only: `credgate import` in another process, a replica without
// Redis, SQL typed by an operator. The tick stays: a notice lost (the
// notifier reconnecting) costs at most the reconcile interval, as before.
type ChangeNotifier interface {
	// WatchSubjectChanges calls changed once when it is watching and then
	// after each commit that may have added to the change log, until ctx
	// ends or the watch fails. It returns ctx's error or the failure.
	// changed must not block.
	WatchSubjectChanges(ctx context.Context, changed func()) error
}

// WithChangeNotices has the tier read the change log when n says it grew
// (the adapters: PostgreSQL's LISTEN, SQLite's poll of the log's end).
func WithChangeNotices(n ChangeNotifier) Option {
	return func(c *config) { c.notices = n }
}

// noticeLoop keeps a watch of the change log running: after a failure it
// waits a reconcile interval (the tick covers that time) and watches
// again.
func (t *Tier) noticeLoop(ctx context.Context) {
	pause := time.NewTimer(t.cfg.reconcile)
	pause.Stop()
	defer pause.Stop()
	for {
		err := t.cfg.notices.WatchSubjectChanges(ctx, func() {
			if !t.noticesUp.Swap(true) {
				t.cfg.logger.Info("cache: watching the change log for notices")
			}
			t.stats.notices.Add(1)
			t.Reconcile()
		})
		if ctx.Err() != nil {
			return
		}
		t.stats.noticeErrors.Add(1)
		if t.noticesUp.Swap(false) || t.stats.noticeErrors.Load() == 1 {
			t.cfg.logger.Warn("cache: cannot watch the change log; reading it every cache.reconcile until watching again",
				"err", err, "reconcile", t.cfg.reconcile.String())
		}
		pause.Reset(t.cfg.reconcile)
		select {
		case <-ctx.Done():
			return
		case <-pause.C:
		}
	}
}

// noticeState is what /readyz shows of the watch: listening, down or
// disabled (no notifier).
func (t *Tier) noticeState() string {
	switch {
	case t.cfg.notices == nil || t.feed == nil:
		return "disabled"
	case t.noticesUp.Load():
		return "listening"
	default:
		return "down"
	}
}
