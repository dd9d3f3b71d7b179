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
// refuses (\u0000, lone surrogates) left to the trigger, which fails on
// them as before.
func ReadPGCheckRows(recs []evidence.Record) (rows PGCheckRows, ok bool) {
	var c checkRows
	for i := range recs {
		r := &recs[i]
		if r.Kind == evidence.KindCheck && jsonbRefuses(r.Body) {
			return PGCheckRows{}, false
		}
		c.add(r, int64(i))
	}
	if len(c.slow) > 0 {
		return PGCheckRows{}, false
	}
	indexed := make(map[string]bool, len(c.index)/8)
	for i := 0; i+8 <= len(c.index); i += 8 {
		row := c.index[i : i+8]
		id := row[0].(string)
		indexed[id] = true
		rows.IndexIDs = append(rows.IndexIDs, id)
		rows.IndexOffsets = append(rows.IndexOffsets, row[1].(int64))
		rows.IndexPartners = append(rows.IndexPartners, row[2].(string))
		rows.Subjects = append(rows.Subjects, row[3].(string))
		rows.Actions = append(rows.Actions, row[4].(string))
		rows.Outcomes = append(rows.Outcomes, row[5].(string))
		rows.Regions = append(rows.Regions, row[6].(string))
		rows.IndexAts = append(rows.IndexAts, row[7].(time.Time))
	}
	var seen map[[2]string]bool
	for i := 0; i+2 <= len(c.lists); i += 2 {
		k := [2]string{c.lists[i].(string), c.lists[i+1].(string)}
		if !indexed[k[0]] || seen[k] {
			continue
		}
		if seen == nil {
			seen = map[[2]string]bool{}
		}
		seen[k] = true
		rows.ListIDs, rows.Lists = append(rows.ListIDs, k[0]), append(rows.Lists, k[1])
	}
	return rows, true
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
