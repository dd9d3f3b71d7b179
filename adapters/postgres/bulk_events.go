package postgres

import "context"

// DeferEvents: migration 0015's insert trigger leaves the outbox alone
// while the setting is on, until WriteDeferredEvents or the end of the
// transaction.
func (t loadTx) DeferEvents(ctx context.Context) error {
	_, err := t.tx.Exec(ctx, `SET LOCAL credgate.defer_entry_events = 'on'`)
	return err
}

// WriteDeferredEvents turns the deferral off and writes the outbox rows of
// the entries this transaction inserted. The id range lets the primary key find them without reading the whole
// table; should the database's collation order ids otherwise than first
// and last were picked, the rest of the transaction's entries are added by
// a second, full reading, so that none is left unannounced.
func (t loadTx) WriteDeferredEvents(ctx context.Context, first, last string, want int64) (int64, error) {
	if _, err := t.tx.Exec(ctx, `SET LOCAL credgate.defer_entry_events = 'off'`); err != nil {
		return 0, err
	}
	if want == 0 {
		return 0, nil
	}
	tag, err := t.tx.Exec(ctx, `INSERT INTO event_outbox (entry_id, version, recorded_at)
		SELECT id, version, updated_at FROM entries
		WHERE id BETWEEN $1 AND $2 AND xmin = pg_current_xact_id()::xid`, first, last)
	if err != nil {
		return 0, err
	}
	n := tag.RowsAffected()
	if n >= want {
		return n, nil
	}
	tag, err = t.tx.Exec(ctx, `INSERT INTO event_outbox (entry_id, version, recorded_at)
		SELECT id, version, updated_at FROM entries
		WHERE NOT (id BETWEEN $1 AND $2) AND xmin = pg_current_xact_id()::xid`, first, last)
	if err != nil {
		return 0, err
	}
	return n + tag.RowsAffected(), nil
}
