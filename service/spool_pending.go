package service

import (
	"errors"
	"sync"
)

// ErrReceiptPending: the record was answered with a promise of inclusion
// and waits in this replica's evidence spool; the log, and so its receipt
// and GET /v1/checks/{id}, have it once the spool is integrated. Not "no
// such record": ask again later.
var ErrReceiptPending = errors.New("the record is in this replica's evidence spool, not yet integrated into the log")

// MaxSpoolLookupBytes bounds the spool SpoolLookup reads to learn which
// records wait in it: a larger spool (the log away for long) is not read
// for a lookup, which then answers that it does not know the record.
const MaxSpoolLookupBytes = 64 << 20

// SpoolLookup tells whether a record waits in a SpoolingLog's spool, so
// that a read of it is answered "pending" rather than "not found". It keeps
// the ids of the pending records it read and reads the spool again only
// when records were spooled since (the log away, when reads of the log
// fail anyway); records integrated meanwhile are told apart by their
// position. It is safe for concurrent use.
type SpoolLookup struct {
	log *SpoolingLog

	mu sync.Mutex
	// next is the spool's next position when ids was read.
	next uint64
	ids  map[string]spooledRecord
}

type spooledRecord struct {
	position uint64
	partner  string
}

// NewSpoolLookup returns the lookup of l's spool.
func NewSpoolLookup(l *SpoolingLog) *SpoolLookup { return &SpoolLookup{log: l} }

// Pending reports whether record id waits in the spool, not yet
// integrated, and is caller's to know of (a partner's own record; any for
// administrators and auditors). False when it does not, or when the spool
// cannot be read or is larger than MaxSpoolLookupBytes.
func (x *SpoolLookup) Pending(caller Caller, id string) bool {
	if x == nil || x.log == nil {
		return false
	}
	st := x.log.spool.Stats()
	x.mu.Lock()
	defer x.mu.Unlock()
	if st.Pending == 0 {
		x.ids = nil
		return false
	}
	if x.ids == nil || x.next != st.Next {
		if st.Bytes > MaxSpoolLookupBytes {
			return false
		}
		entries, err := x.log.spool.Pending(st.Pending)
		if err != nil {
			return false
		}
		ids := make(map[string]spooledRecord, len(entries))
		for _, e := range entries {
			ids[e.Record.ID] = spooledRecord{position: e.Position, partner: e.Record.Partner}
		}
		x.ids, x.next = ids, st.Next
	}
	r, ok := x.ids[id]
	if !ok || r.position <= st.Integrated {
		return false
	}
	return caller.Role != RolePartner || r.partner == caller.ClientID
}
