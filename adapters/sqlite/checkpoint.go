package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// checkpointer copies the WAL back into the database file from its own
// goroutine and connection, so that commits do not: with SQLite's automatic
// checkpoint (every 1 000 frames) the commit that crossed the mark copied the
// frames and synced the database before it returned, holding up the group
// commit behind it, and the frames of the hot pages were copied again at
// every mark.
//
// A PASSIVE checkpoint runs beside the writer, at most once per interval
// and only after commits. It never blocks the writer, but while commits keep
// coming it never finishes the WAL either, and only a finished WAL is reused
// from its start; so once the WAL holds maxFrames frames, a RESTART waits
// for the writer, copies what the last PASSIVE left and makes the next
// commit write from the start of the file again. The WAL is thus bounded by
// maxFrames plus what commits during one interval.
type checkpointer struct {
	db        *sql.DB // one connection of its own
	interval  time.Duration
	maxFrames int64
	kick      chan struct{} // a commit happened (buffered, 1)
	stop      chan struct{}
	done      chan struct{}
	stopOnce  sync.Once
	log       *slog.Logger
}

// WithLogger sets the logger of the store's background work: a checkpoint
// that fails is a warning there (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// newCheckpointer starts the checkpointer; log nil is slog.Default().
func newCheckpointer(db *sql.DB, interval time.Duration, maxFrames int64, log *slog.Logger) *checkpointer {
	if log == nil {
		log = slog.Default()
	}
	c := &checkpointer{
		db: db, interval: interval, maxFrames: maxFrames,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		log: log,
	}
	go c.run()
	return c
}

// committed tells the checkpointer the WAL grew; it never blocks.
func (c *checkpointer) committed() {
	if c == nil {
		return
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	for {
		select {
		case <-c.stop:
			return
		case <-c.kick:
		}
		if _, err := c.checkpoint(context.Background()); err != nil {
			c.log.Warn("sqlite: checkpoint", "err", err)
		}
		// The pause is bounded by stop, so Close never waits for it.
		select {
		case <-c.stop:
			return
		case <-time.After(c.interval):
		}
	}
}

// checkpoint runs a PASSIVE checkpoint, then a RESTART if the WAL holds
// maxFrames frames or more; it returns the mode of the last one.
func (c *checkpointer) checkpoint(ctx context.Context) (string, error) {
	frames, err := c.run1(ctx, "PASSIVE")
	if err != nil || frames < c.maxFrames {
		return "PASSIVE", err
	}
	_, err = c.run1(ctx, "RESTART")
	return "RESTART", err
}

// run1 runs one checkpoint of the given mode and returns the frames the WAL
// held. A busy RESTART (a reader kept an old snapshot past the busy
// timeout) is not an error: the next round tries again.
func (c *checkpointer) run1(ctx context.Context, mode string) (int64, error) {
	var busy, frames, copied int64
	err := c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &frames, &copied)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", mode, err)
	}
	return frames, nil
}

// close stops the goroutine and closes the connection.
func (c *checkpointer) close() error {
	if c == nil {
		return nil
	}
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
	return c.db.Close()
}
