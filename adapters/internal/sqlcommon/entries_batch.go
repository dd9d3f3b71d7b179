package sqlcommon

import (
	"context"
	"strconv"
	"strings"

	"github.com/credgate/credgate/service"
)

// MaxLookupBatch caps the subjects of one LookupEntriesBatch query (a
// bound on its parameters, well under SQLite's).
const MaxLookupBatch = 1000

// qualifiedEntryColumns is EntryColumns of the table aliased e.
var qualifiedEntryColumns = func() string {
	cols := strings.Split(EntryColumns, ",")
	for i, c := range cols {
		cols[i] = "e." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}()

// batchAffectingSQL is AffectingSQL for n subjects ($1…$n) at once, each
// row keyed by the subject it affects.
func batchAffectingSQL(n int) string {
	var ph strings.Builder
	for i := 1; i <= n; i++ {
		if i > 1 {
			ph.WriteByte(',')
		}
		ph.WriteByte('$')
		ph.WriteString(strconv.Itoa(i))
	}
	in := ph.String()
	return `SELECT m.k, ` + qualifiedEntryColumns + ` FROM (
		SELECT subject AS k, id AS eid FROM entries WHERE subject IN (` + in + `)
		UNION
		SELECT person_id, entry_id FROM entry_persons WHERE person_id IN (` + in + `)
	) m JOIN entries e ON e.id = m.eid ORDER BY m.k, e.id`
}

// LookupEntriesBatch is LookupEntries for many subjects in a query per
// MaxLookupBatch of them: a screening job reads a batch of subjects in one
// round trip instead of one each. Every subject asked about is in the
// answer, with no entries when none affect it.
func (s *Store) LookupEntriesBatch(ctx context.Context, subjects []string) (map[string]service.Lookup, error) {
	out := make(map[string]service.Lookup, len(subjects))
	for _, sub := range subjects {
		out[sub] = service.Lookup{}
	}
	for start := 0; start < len(subjects); start += MaxLookupBatch {
		chunk := subjects[start:min(start+MaxLookupBatch, len(subjects))]
		args := make([]any, len(chunk))
		for i, sub := range chunk {
			args[i] = sub
		}
		rows, err := s.db.Query(ctx, batchAffectingSQL(len(chunk)), args...)
		if err != nil {
			return nil, s.errf("entries affecting subjects: %w", err)
		}
		for rows.Next() {
			var k string
			e, err := scanEntry(rows, &k)
			if err != nil {
				rows.Close()
				return nil, s.errf("entries affecting subjects: %w", err)
			}
			l := out[k]
			l.Entries = append(l.Entries, e)
			out[k] = l
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, s.errf("entries affecting subjects: %w", err)
		}
	}
	return out, nil
}
