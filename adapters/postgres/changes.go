package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/credgate/credgate/service"
)

// Cursors of the change log are transaction ids (xid8). A reading at
// snapshot S returns the rows of transactions with xid >= the previous
// cursor that S sees, and the xmin of S as the next cursor: every
// transaction S does not see (still running, or not yet started) has an xid
// at or above that xmin, so the next reading finds it, however long it ran
// and in whatever order transactions commit. Rows of transactions that were
// running at the previous reading are handed out again; SubjectChange.ID
// lets the reader skip them.

// ChangeCursor returns a cursor from which SubjectChanges reports every
// change that is not visible now.
func (s *Store) ChangeCursor(ctx context.Context) (uint64, error) {
	var x string
	if err := s.pool.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text`).Scan(&x); err != nil {
		return 0, fmt.Errorf("postgres: change cursor: %w", err)
	}
	return strconv.ParseUint(x, 10, 64)
}

// SubjectChanges returns up to limit changes at or after cursor, the next
// cursor, and lost when the caller cannot know every change since cursor
// (more than limit, or pruned): it must then assume every subject changed.
// One statement, so that the rows and the next cursor come from one
// snapshot.
func (s *Store) SubjectChanges(ctx context.Context, cursor uint64, limit int) ([]service.SubjectChange, uint64, bool, error) {
	if limit <= 0 {
		limit = 1
	}
	rows, err := s.pool.Query(ctx, `WITH meta AS (
			SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin,
			       (SELECT xid::text FROM subject_changes_pruned) AS pruned
		)
		SELECT meta.xmin, meta.pruned, c.id, c.subject FROM meta
		LEFT JOIN LATERAL (
			SELECT id, subject FROM subject_changes WHERE xid >= $1::text::xid8 ORDER BY id LIMIT $2
		) c ON true`, strconv.FormatUint(cursor, 10), limit+1)
	if err != nil {
		return nil, cursor, false, fmt.Errorf("postgres: subject changes: %w", err)
	}
	defer rows.Close()
	var (
		out           []service.SubjectChange
		xmin, pruned  string
		id            *int64
		subject       *string
		next, prunedX uint64
	)
	for rows.Next() {
		if err := rows.Scan(&xmin, &pruned, &id, &subject); err != nil {
			return nil, cursor, false, fmt.Errorf("postgres: subject changes: %w", err)
		}
		if id != nil {
			out = append(out, service.SubjectChange{ID: *id, Subject: *subject})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, cursor, false, fmt.Errorf("postgres: subject changes: %w", err)
	}
	if next, err = strconv.ParseUint(xmin, 10, 64); err != nil {
		return nil, cursor, false, fmt.Errorf("postgres: subject changes: xmin %q: %w", xmin, err)
	}
	if prunedX, err = strconv.ParseUint(pruned, 10, 64); err != nil {
		return nil, cursor, false, fmt.Errorf("postgres: subject changes: pruned %q: %w", pruned, err)
	}
	if len(out) > limit || cursor < prunedX {
		return nil, next, true, nil
	}
	return out, next, false, nil
}

// PruneSubjectChanges deletes the changes of transactions below before (a
// cursor some reader obtained long enough ago) and raises the pruned mark,
// so that a reader still below it knows it missed changes.
func (s *Store) PruneSubjectChanges(ctx context.Context, before uint64) error {
	b := strconv.FormatUint(before, 10)
	_, err := s.pool.Exec(ctx, `WITH gone AS (DELETE FROM subject_changes WHERE xid < $1::text::xid8)
		UPDATE subject_changes_pruned SET xid = greatest(xid, $1::text::xid8)`, b)
	if err != nil {
		return fmt.Errorf("postgres: prune subject changes: %w", err)
	}
	return nil
}

// changesChannel is where commits that add to the change log notify
// (migration 0020); the payload is the schema whose log grew.
const changesChannel = "credgate_subject_changes"

// A watch that has heard nothing for a while (WithWatchIdle, 30 s) pings
// its connection: a connection that died without a word (a partition, a
// failover) would otherwise look like a quiet log until TCP gave up, tens
// of minutes later.
const (
	defaultWatchIdle = 30 * time.Second
	watchTimeout     = 10 * time.Second // connecting, LISTEN, a ping
)

// WatchSubjectChanges calls changed once it listens and then after each
// commit that added to this schema's change log, until ctx ends or the
// connection fails (cache.ChangeNotifier). It listens on a connection of
// its own, outside the pool: LISTEN holds its session, and a pooled
// connection would be handed to others meanwhile.
func (s *Store) WatchSubjectChanges(ctx context.Context, changed func()) error {
	conn, err := listen(ctx, s.pool.Config().ConnConfig)
	if err != nil {
		return fmt.Errorf("postgres: watch changes: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(ctx)
	}()
	// Commits between the caller's last reading and LISTEN sent notices
	// nobody heard: one reading now covers them.
	changed()
	for {
		wait, cancel := context.WithTimeout(ctx, s.watchIdle)
		n, err := conn.WaitForNotification(wait)
		quiet := wait.Err() != nil
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil:
			if n.Payload == s.schema {
				changed()
			}
		case quiet:
			// Quiet for a while (a timeout leaves the connection usable).
			ping, cancel := context.WithTimeout(ctx, min(watchTimeout, s.watchIdle))
			err = conn.Ping(ping)
			cancel()
			if err != nil {
				return fmt.Errorf("postgres: watch changes: %w", err)
			}
		default:
			return fmt.Errorf("postgres: watch changes: %w", err)
		}
	}
}

// watchName is the watching connection's application_name, so that
// pg_stat_activity tells it from the pool's.
const watchName = "credgate change log watch"

// listen opens a connection of its own and listens on changesChannel,
// within watchTimeout.
func listen(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, watchTimeout)
	defer cancel()
	cfg = cfg.Copy()
	cfg.RuntimeParams["application_name"] = watchName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+changesChannel); err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return conn, nil
}
