package sqlcommon

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/credgate/credgate/policy"
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

// batchAffectingArraySQL is batchAffectingSQL with the subjects as one
// text[] parameter (PostgreSQL), each looked up through the indexes by a
// lateral join: a plan that joins the matches to the whole table instead
// (as a stale estimate of its size invites) costs 20 times as much. An
// entry on a subject that also names it as a responsible person comes
// twice; LookupEntriesBatch keeps one.
var batchAffectingArraySQL = `SELECT s.k, e.* FROM unnest($1::text[]) AS s(k) JOIN LATERAL (
		SELECT ` + EntryColumns + ` FROM entries WHERE subject = s.k
		UNION ALL
		SELECT ` + qualifiedEntryColumns + ` FROM entry_persons p JOIN entries e ON e.id = p.entry_id WHERE p.person_id = s.k
	) e ON true`

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
		var (
			q    string
			args []any
		)
		if s.d.Name == "postgres" {
			// One array parameter: a list of a thousand would be planned
			// afresh at each query, which costs PostgreSQL more than the
			// lookups themselves.
			q, args = batchAffectingArraySQL, []any{chunk}
		} else {
			q, args = batchAffectingSQL(len(chunk)), make([]any, len(chunk))
			for i, sub := range chunk {
				args[i] = sub
			}
		}
		rows, err := s.db.Query(ctx, q, args...)
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
			if !slices.ContainsFunc(l.Entries, func(x policy.Entry) bool { return x.ID == e.ID }) {
				l.Entries = append(l.Entries, e)
			}
			out[k] = l
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, s.errf("entries affecting subjects: %w", err)
		}
	}
	// Ordered by ID, as LookupEntries gives them.
	for _, l := range out {
		if len(l.Entries) > 1 {
			slices.SortFunc(l.Entries, func(a, b policy.Entry) int { return strings.Compare(a.ID, b.ID) })
		}
	}
	return out, nil
}
