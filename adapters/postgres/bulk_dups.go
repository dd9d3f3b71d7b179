package postgres

import (
	"context"

	"github.com/credgate/credgate/adapters/internal/sqlcommon"
)

// loadLockClass is the first key of the lock a load holds from its check
// for stored duplicates to its end; the second is the schema's hash, so
// that stores in different schemas of one database do not wait on each
// other (the same scheme as appendLockClass).
const loadLockClass int32 = 0x63726c64 // "crld"

// storedDuplicatesSQL finds the entries this transaction copied (xmin is
// its id; ids from $1 to $2, which the primary key finds without reading
// the whole table) that share their key with an entry it did not copy,
// committed by anyone, revoked or not: one probe of entries_subject per
// copied entry (a subject has a few entries, the copied one among them).
// The list is compared as an expression (joined to the empty string) so
// that no plan probes entries_list instead: a load's statistics are not
// there yet, and the planner that guessed its list few rows read the
// whole list once per entry (120 000 entries of one list: still running
// after 24 minutes). A load's ids are "ent_" and 32 lowercase hexadecimal
// digits, which every collation orders as bytes, as first and last were
// picked.
const storedDuplicatesSQL = `SELECT n.id, n.subject, n.list, n.originating_department, n.decided_at, min(o.id)
	FROM entries n JOIN entries o ON o.subject = n.subject AND o.list || '' = n.list
		AND o.originating_department = n.originating_department AND o.decided_at = n.decided_at
		AND o.xmin <> pg_current_xact_id()::xid
	WHERE n.id BETWEEN $1 AND $2 AND n.xmin = pg_current_xact_id()::xid
	GROUP BY n.id
	ORDER BY n.id LIMIT $3`

// StoredDuplicates takes the loads' lock, until the transaction ends, and
// then finds the copied entries that repeat another: a load that waited
// here reads, once it holds the lock, what the load before it committed
// (each statement of a READ COMMITTED transaction sees every commit before
// it began).
func (t loadTx) StoredDuplicates(ctx context.Context, first, last string, limit int) (sqlcommon.Rows, error) {
	if _, err := t.tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))`, loadLockClass); err != nil {
		return nil, err
	}
	// A load that copied nothing has first and last "": no id between.
	return t.Query(ctx, storedDuplicatesSQL, first, last, limit)
}
