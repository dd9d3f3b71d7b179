package sqlcommon

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// stagedDuplicatesSQL finds the staged entries of load $1 that repeat a
// stored entry, by id, at most $2: one pass over the load's staging rows
// (entry_load_entries_load), each a probe of entries_subject. A subject
// has a few entries, so the probe's rows are few; an index on the whole
// key would cost every insert into entries a fourth B-tree for what this
// probe already does. The list is compared as an expression (joined to
// the empty string) so that it cannot be probed through entries_list
// instead, which SQLite, without statistics, prefers: a whole list read
// per staged entry.
const stagedDuplicatesSQL = `SELECT l.id, l.subject, l.list, l.originating_department, l.decided_at, min(e.id)
	FROM entry_load_entries l JOIN entries e ON e.subject = l.subject AND e.list || '' = l.list
		AND e.originating_department = l.originating_department AND e.decided_at = l.decided_at
	WHERE l.load_id = $1
	GROUP BY l.id, l.subject, l.list, l.originating_department, l.decided_at
	ORDER BY l.id LIMIT $2`

// heldSubjects is how many subjects one query of heldDuplicates names.
const heldSubjects = 1000

// StoredDuplicates returns the entries of load id, staged and held, that
// repeat a stored entry (service.EntryLoader). A load in a transaction of
// its own (LoadTxer) is checked in it, under a database lock that other
// loads' checks wait for until it ends; a staged load is checked against
// its staging rows, one at a time per store from here until its commit or
// discard (a single process writes a SQLite database).
func (s *Store) StoredDuplicates(ctx context.Context, id string, held []policy.Entry, limit int) ([]service.StoredDuplicate, error) {
	if limit <= 0 {
		return nil, nil
	}
	var (
		q     Querier = s.db
		found []service.StoredDuplicate
		// Outside a load's transaction a failure aborts nothing: it is
		// only classified, as in every other branch.
		fail = s.d.MapErr
	)
	if v, ok := s.loads.Load(id); ok && id != "" {
		l := v.(*openLoad)
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.err != nil {
			return nil, s.errf("stored duplicates: %w", l.err)
		}
		// A failed statement aborts the load's transaction.
		fail = func(err error) error {
			l.err = s.d.MapErr(err)
			return l.err
		}
		rows, err := l.tx.StoredDuplicates(ctx, l.first, l.last, limit)
		if found, err = collect(rows, err, scanStoredDuplicate); err != nil {
			return nil, s.errf("stored duplicates: %w", fail(err))
		}
		q = l.tx
	} else if id != "" {
		if _, ok := s.db.(LoadTxer); ok {
			return nil, s.errf("stored duplicates: load %q: %w", id, service.ErrNotFound)
		}
		// A load that is not there does not wait; one discarded while it
		// waited must not keep the gate, with nothing left to commit or
		// discard it.
		if err := s.loadExists(ctx, id); err != nil {
			return nil, s.errf("stored duplicates: %w", err)
		}
		if err := s.stagedGate.acquire(ctx, id); err != nil {
			return nil, s.errf("stored duplicates: %w", err)
		}
		if err := s.loadExists(ctx, id); err != nil {
			s.stagedGate.release(id)
			return nil, s.errf("stored duplicates: %w", err)
		}
		rows, err := s.db.Query(ctx, stagedDuplicatesSQL, id, limit)
		if found, err = collect(rows, err, scanStoredDuplicate); err != nil {
			return nil, s.errf("stored duplicates: %w", s.d.MapErr(err))
		}
	}
	more, err := s.heldDuplicates(ctx, q, held)
	if err != nil {
		return nil, s.errf("stored duplicates: %w", fail(err))
	}
	found = append(found, more...)
	slices.SortFunc(found, func(x, y service.StoredDuplicate) int { return cmp.Compare(x.ID, y.ID) })
	return found[:min(len(found), limit)], nil
}

// loadExists returns ErrNotFound unless staged load id is registered.
func (s *Store) loadExists(ctx context.Context, id string) error {
	var one int
	err := s.db.QueryRow(ctx, `SELECT 1 FROM entry_loads WHERE id = $1`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("load %q: %w", id, service.ErrNotFound)
	}
	if err != nil {
		return s.d.MapErr(err)
	}
	return nil
}

func scanStoredDuplicate(r Rows) (service.StoredDuplicate, error) {
	var d service.StoredDuplicate
	err := r.Scan(&d.ID, &d.Key.Subject, &d.Key.List, &d.Key.OriginatingDepartment, &d.Key.DecidedAt, &d.StoredID)
	d.Key.DecidedAt = d.Key.DecidedAt.UTC()
	return d, err
}

// heldDuplicates returns the entries of held that repeat an entry stored
// (q sees it): the stored entries of their subjects are read, a thousand
// subjects a query, and matched by key here. held are the entries of
// lists with cross-list rules, which the service reads the subjects'
// entries of anyway.
func (s *Store) heldDuplicates(ctx context.Context, q Querier, held []policy.Entry) ([]service.StoredDuplicate, error) {
	if len(held) == 0 {
		return nil, nil
	}
	byKey := make(map[string]int, len(held))
	var subjects []string
	seen := map[string]bool{}
	for i, e := range held {
		byKey[keyText(service.KeyOf(e))] = i
		if !seen[e.Subject.Value] {
			seen[e.Subject.Value] = true
			subjects = append(subjects, e.Subject.Value)
		}
	}
	stored := map[int]service.StoredDuplicate{} // by held index
	for part := range slices.Chunk(subjects, heldSubjects) {
		list, err := jsonList(part)
		if err != nil {
			return nil, err
		}
		rows, err := q.Query(ctx, `SELECT e.id, e.subject, e.list, e.originating_department, e.decided_at
			FROM entries e WHERE e.subject IN (SELECT value FROM `+s.d.JSONValues("$1")+`)`, list)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var (
				id string
				k  service.EntryKey
			)
			if err := rows.Scan(&id, &k.Subject, &k.List, &k.OriginatingDepartment, &k.DecidedAt); err != nil {
				rows.Close()
				return nil, err
			}
			i, ok := byKey[keyText(k)]
			if !ok || id == held[i].ID {
				continue
			}
			if prev, ok := stored[i]; !ok || id < prev.StoredID {
				k.DecidedAt = k.DecidedAt.UTC()
				stored[i] = service.StoredDuplicate{Key: k, ID: held[i].ID, StoredID: id}
			}
		}
		if err := rows.Err(); err != nil {
			rows.Close()
			return nil, err
		}
		rows.Close()
	}
	out := make([]service.StoredDuplicate, 0, len(stored))
	for _, d := range stored {
		out = append(out, d)
	}
	return out, nil
}

// keyText is k as a map key: the time as an instant, to the microsecond
// (as stored).
func keyText(k service.EntryKey) string {
	return k.Subject + "\x00" + k.List + "\x00" + k.OriginatingDepartment + "\x00" + strconv.FormatInt(k.DecidedAt.UnixMicro(), 10)
}

// loadGate is held by one staged load at a time, from its StoredDuplicates
// to its commit or discard, so that a load checks against the entries of
// every load committed before it. The zero value is open.
type loadGate struct {
	mu     sync.Mutex
	holder string
	free   chan struct{} // closed when the holder lets go
}

// acquire waits until the gate is open or held by load id, and holds it
// for id.
func (g *loadGate) acquire(ctx context.Context, id string) error {
	for {
		g.mu.Lock()
		if g.holder == "" || g.holder == id {
			g.holder = id
			g.mu.Unlock()
			return nil
		}
		if g.free == nil {
			g.free = make(chan struct{})
		}
		free := g.free
		g.mu.Unlock()
		select {
		case <-free:
		case <-ctx.Done():
			return fmt.Errorf("waiting for another import to finish: %w", ctx.Err())
		}
	}
}

// release opens the gate if load id holds it.
func (g *loadGate) release(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.holder != id || id == "" {
		return
	}
	g.holder = ""
	if g.free != nil {
		close(g.free)
		g.free = nil
	}
}
