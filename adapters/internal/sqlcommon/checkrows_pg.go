package sqlcommon

import (
	"bytes"
	"time"

	"github.com/credgate/credgate/evidence"
)

// PGCheckRows are the rows PostgreSQL's statement trigger
// evidence_checks_derived (its migration 0013) derives from a batch of
// records, read in Go by checkRows, as the column arrays the PostgreSQL store
// sends (adapters/postgres). The trigger parsed every check's body as jsonb
// inside the commit; the store derives the rows itself when every body of
// the batch is one this reading vouches for, and otherwise leaves the whole
// batch to the trigger.
type PGCheckRows struct {
	// check_index; IndexOffsets are the records' positions in the batch.
	IndexIDs      []string
	IndexOffsets  []int64
	IndexPartners []string
	Subjects      []string
	Actions       []string
	Outcomes      []string
	Regions       []string
	IndexAts      []time.Time
	// check_lists.
	ListIDs, Lists []string
}

// ReadPGCheckRows reads the rows of recs. ok is false, with no rows, when a
// body is one the reading cannot vouch for the trigger's reading of: then
// the trigger must derive the batch. Where PostgreSQL's reading differs from
// SQLite's (which checkRows follows), the rows are adjusted: lists only of
// checks that are indexed, each list once per check, and bodies jsonb
// refuses (\u0000, lone surrogates) left to the trigger, which derives
// their rows (PostgreSQL migration 0026).
func ReadPGCheckRows(recs []evidence.Record) (rows PGCheckRows, ok bool) {
	ok = rows.Read(recs)
	return rows, ok
}

// Read is ReadPGCheckRows into rows, reusing their arrays (a store keeps
// them from one batch to the next; Reset empties them).
//
// Lists are kept or dropped, and made unique, record by record: the
// trigger does so by check id over the batch, which differs only for a
// batch that repeats an id, and such a batch never commits (evidence's id
// is unique, and its insert precedes these rows' in the transaction).
func (rows *PGCheckRows) Read(recs []evidence.Record) bool {
	rows.Reset()
	c := checkRows{cols: *rows, pg: true}
	ok := true
	for i := range recs {
		r := &recs[i]
		if r.Kind == evidence.KindCheck && jsonbRefuses(r.Body) {
			ok = false
			break
		}
		if c.add(r, int64(i)); len(c.slow) > 0 {
			ok = false
			break
		}
	}
	*rows = c.cols
	if !ok {
		rows.Reset()
	}
	return ok
}

// Reset empties rows, keeping their arrays but not what they refer to.
func (rows *PGCheckRows) Reset() {
	for _, s := range [][]string{rows.IndexIDs, rows.IndexPartners, rows.Subjects, rows.Actions, rows.Outcomes,
		rows.Regions, rows.ListIDs, rows.Lists} {
		clear(s)
	}
	rows.IndexIDs, rows.IndexPartners, rows.Subjects = rows.IndexIDs[:0], rows.IndexPartners[:0], rows.Subjects[:0]
	rows.Actions, rows.Outcomes, rows.Regions = rows.Actions[:0], rows.Outcomes[:0], rows.Regions[:0]
	rows.IndexOffsets, rows.IndexAts = rows.IndexOffsets[:0], rows.IndexAts[:0]
	rows.ListIDs, rows.Lists = rows.ListIDs[:0], rows.Lists[:0]
}

// jsonbRefuses reports an escape that jsonb input refuses: \u0000, or a
// surrogate (\uD800–\uDFFF; a valid pair is refused here too, which only
// sends the batch to the trigger).
func jsonbRefuses(b []byte) bool {
	for {
		i := bytes.Index(b, []byte(`\u`))
		if i < 0 || i+6 > len(b) {
			return false
		}
		h := b[i+2 : i+6]
		if string(h) == "0000" || ((h[0] == 'd' || h[0] == 'D') && bytes.IndexByte([]byte("89abcdefABCDEF"), h[1]) >= 0) {
			return true
		}
		b = b[i+2:]
	}
}
