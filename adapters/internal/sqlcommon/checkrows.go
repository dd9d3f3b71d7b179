package sqlcommon

import (
	"bytes"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/credgate/credgate/adapters/internal/storeutil"
	"github.com/credgate/credgate/evidence"
)

// The rows derived from check records, written by AppendLeaves in the
// appending transaction where the dialect asks for it (Dialect.DeriveChecks:
// SQLite, whose row triggers re-parsed each body several times). They are
// exactly what SQLite migration 0010 (evidence_index_check) derived, edge
// cases included (0011's checked_subjects is gone since 0017: the push
// fan-out reads check_index): a body the fast
// reading below cannot vouch for is handed to the triggers' own SQL
// (checkIndexSQL, checkListsSQL), so the result never depends on how Go and
// SQLite differ on unusual JSON.

// Prefixes and suffix of the derived rows' multi-row inserts.
const (
	insertIndexPrefix = `INSERT OR IGNORE INTO check_index (check_id, idx, partner, subject, action, outcome, region, checked_at) VALUES `
	insertListsPrefix = `INSERT OR IGNORE INTO check_lists (check_id, list) VALUES `
)

// Rows per multi-row INSERT of the derived rows (at most 2 048 parameters).
const (
	indexPerInsert = 256
	listsPerInsert = 1024
)

// checkIndexSQL ($1 id, $2 idx, $3 partner, $4 at, $5 body) and
// checkListsSQL ($1 id, $2 body) are 0010's evidence_index_check for one
// record, for the bodies the fast reading leaves to SQLite. A body that is
// not credgate's own or not valid JSON reads as '{}', which derives nothing
// (json_type and json_each fail on malformed JSON, where the trigger's
// WHEN skipped the record).
const (
	checkIndexSQL = `INSERT OR IGNORE INTO check_index (check_id, idx, partner, subject, action, outcome, region, checked_at)
	SELECT $1, $2, $3, json_extract(b, '$.subject.id'), json_extract(b, '$.action'),
	       coalesce(json_extract(b, '$.outcome'), ''), coalesce(json_extract(b, '$.context.region'), ''), $4
	FROM ` + checkBodyFrom5 + `
	WHERE json_type(b, '$.subject.id') = 'text' AND json_type(b, '$.action') = 'text'
	  AND json_type(b, '$.as_of') IS NULL`
	checkListsSQL = `INSERT OR IGNORE INTO check_lists (check_id, list)
	SELECT $1, json_extract(m.value, '$.list')
	FROM ` + checkBodyFrom2 + ` AS d, json_each(d.b, '$.measures') AS m
	WHERE json_type(d.b, '$.as_of') IS NULL AND m.type = 'object'
	  AND json_extract(m.value, '$.status') = 'applied' AND json_type(m.value, '$.list') = 'text'`
	checkBodyFrom5 = `(SELECT CASE WHEN substr(x, 1, 12) = '{"check_id":' AND json_valid(x) THEN x ELSE '{}' END AS b
		FROM (SELECT CAST($5 AS TEXT) AS x))`
	checkBodyFrom2 = `(SELECT CASE WHEN substr(x, 1, 12) = '{"check_id":' AND json_valid(x) THEN x ELSE '{}' END AS b
		FROM (SELECT CAST($2 AS TEXT) AS x))`
)

// checkPrefix starts every body of credgate's own check records; 0010
// indexes no other.
var checkPrefix = []byte(`{"check_id":`)

// checkRows gathers the rows a batch of records derives, column by column
// as PostgreSQL sends them; SQLite flattens them into its multi-row
// INSERT arguments (indexArgs, listsArgs). Typed columns rather than one
// []any: boxing each string, index and time cost an allocation apiece, and
// PostgreSQL then had to unbox them again into its arrays.
type checkRows struct {
	cols PGCheckRows
	slow []Stmt // records left to the triggers' SQL
	// pg reads the lists as PostgreSQL's trigger does: only those of
	// indexed checks, each list once per check (SQLite's keeps them all).
	pg bool
}

// add derives the rows of record r, stored at index idx.
func (c *checkRows) add(r *evidence.Record, idx int64) {
	if r.Kind != evidence.KindCheck {
		return
	}
	at := storeutil.Time(r.At)
	if !bytes.HasPrefix(r.Body, checkPrefix) {
		return // neither substr(…, 1, 12) nor json_valid could hold
	}
	if f := r.Check; f != nil && factsPlain(f) {
		c.addFacts(r, f, idx, at)
		return
	}
	if !c.addIndex(r, idx, at) {
		body := nonNil(r.Body)
		c.slow = append(c.slow, Stmt{checkIndexSQL, []any{r.ID, idx, r.Partner, at, body}},
			Stmt{checkListsSQL, []any{r.ID, body}})
	}
}

// addIndex is 0010's evidence_index_check for a body starting with
// checkPrefix. It returns false, deriving nothing, when it cannot vouch
// that its reading is SQLite's: the body is not valid UTF-8 or not strict
// JSON as it reads it, nests deeply, repeats or escapes a member it reads,
// escapes a string it takes, or has a type the trigger would convert
// (a number as the outcome, measures as an object).
func (c *checkRows) addIndex(r *evidence.Record, idx int64, at time.Time) bool {
	if !utf8.Valid(r.Body) {
		return false
	}
	top, ok := readCheckTop(r.Body)
	if !ok {
		return false
	}
	if top.asOf.present() {
		return true // a re-run as of a past time: not a check anyone made
	}
	subject, sok := top.subject.member(r.Body, "id")
	region, rok := top.context.member(r.Body, "region")
	if !sok || !rok {
		return false
	}
	subjectID, sText, ok1 := subject.text(r.Body)
	action, aText, ok2 := top.action.text(r.Body)
	outcome, ok3 := top.outcome.textOrEmpty(r.Body)
	reg, ok4 := region.textOrEmpty(r.Body)
	if !ok1 || !ok2 || (sText && aText && (!ok3 || !ok4)) {
		return false
	}
	indexed := sText && aText
	// The record's lists go straight into the columns, taken back if the
	// body turns out to be one the reading cannot vouch for.
	l := &c.cols
	from := len(l.Lists)
	// Absent or a scalar, measures yield nothing json_each would call an
	// object; json_each walks an object's members (no body of credgate's).
	switch top.measures.kind {
	case '{':
		return false
	case '[':
		ok := jsonEach(r.Body, top.measures, func(el jsonSpan) bool {
			if el.kind != '{' {
				return true
			}
			var m [2]jsonSpan
			if !jsonMembers(r.Body, el, m[:], "status", "list") {
				return false
			}
			status, isText, ok := m[0].rawText(r.Body)
			if !ok {
				return false
			}
			if !isText || string(status) != "applied" {
				return true
			}
			list, isText, ok := m[1].rawText(r.Body)
			if !ok {
				return false
			}
			if !isText || (c.pg && (!indexed || containsBytes(l.Lists[from:], list))) {
				return true
			}
			l.ListIDs, l.Lists = append(l.ListIDs, r.ID), append(l.Lists, string(list))
			return true
		})
		if !ok {
			clear(l.ListIDs[from:])
			clear(l.Lists[from:])
			l.ListIDs, l.Lists = l.ListIDs[:from], l.Lists[:from]
			return false
		}
	}
	if indexed {
		l.IndexIDs = append(l.IndexIDs, r.ID)
		l.IndexOffsets = append(l.IndexOffsets, idx)
		l.IndexPartners = append(l.IndexPartners, r.Partner)
		l.Subjects = append(l.Subjects, subjectID)
		l.Actions = append(l.Actions, action)
		l.Outcomes = append(l.Outcomes, outcome)
		l.Regions = append(l.Regions, reg)
		l.IndexAts = append(l.IndexAts, at)
	}
	return true
}

// addFacts derives the rows of a record from what its checker knows of
// its body (plain facts), without reading the body: what addIndex reads
// of a body the checker encoded, subject, action and outcome always text
// (FuzzCheckFacts holds the two to each other).
func (c *checkRows) addFacts(r *evidence.Record, f *evidence.CheckFacts, idx int64, at time.Time) {
	l := &c.cols
	from := len(l.Lists)
	for _, list := range f.Lists {
		if c.pg && slices.Contains(l.Lists[from:], list) {
			continue
		}
		l.ListIDs, l.Lists = append(l.ListIDs, r.ID), append(l.Lists, list)
	}
	l.IndexIDs = append(l.IndexIDs, r.ID)
	l.IndexOffsets = append(l.IndexOffsets, idx)
	l.IndexPartners = append(l.IndexPartners, r.Partner)
	l.Subjects = append(l.Subjects, f.Subject)
	l.Actions = append(l.Actions, f.Action)
	l.Outcomes = append(l.Outcomes, f.Outcome)
	l.Regions = append(l.Regions, f.Region)
	l.IndexAts = append(l.IndexAts, at)
}

// containsBytes reports whether one of ss is b.
func containsBytes(ss []string, b []byte) bool {
	for _, s := range ss {
		if s == string(b) {
			return true
		}
	}
	return false
}

// indexArgs are the check_index rows as the arguments of SQLite's
// multi-row inserts, 8 a row in its columns' order.
func (c *checkRows) indexArgs() []any {
	l := &c.cols
	args := make([]any, 0, 8*len(l.IndexIDs))
	for i := range l.IndexIDs {
		args = append(args, l.IndexIDs[i], l.IndexOffsets[i], l.IndexPartners[i], l.Subjects[i], l.Actions[i],
			l.Outcomes[i], l.Regions[i], l.IndexAts[i])
	}
	return args
}

// listsArgs are the check_lists rows as arguments, 2 a row.
func (c *checkRows) listsArgs() []any {
	l := &c.cols
	args := make([]any, 0, 2*len(l.Lists))
	for i := range l.Lists {
		args = append(args, l.ListIDs[i], l.Lists[i])
	}
	return args
}

// factsPlain reports whether a record's facts can be taken for its body's
// reading: each is valid UTF-8 with nothing JSON encoding escapes (control
// characters, quote, backslash, the HTML characters <, >, & and U+2028,
// U+2029), so that the body holds it verbatim where addIndex would take it.
// Other facts send the record to addIndex, as if it had none.
func factsPlain(f *evidence.CheckFacts) bool {
	if !plainText(f.Subject) || !plainText(f.Action) || !plainText(f.Outcome) || !plainText(f.Region) {
		return false
	}
	for _, l := range f.Lists {
		if !plainText(l) {
			return false
		}
	}
	return true
}

func plainText(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		case c == 0xE2 && i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0xA8 || s[i+2] == 0xA9):
			return false
		}
	}
	return utf8.ValidString(s)
}

// jsonSpan is a JSON value in a body: b[start:end], kind its first byte (0:
// absent).
type jsonSpan struct {
	start, end int
	kind       byte
}

func (s jsonSpan) present() bool { return s.kind != 0 }

// text is the value of a string without escapes (isText), or isText false
// for a value of another type or none; ok is false for an escaped string.
func (s jsonSpan) text(b []byte) (v string, isText, ok bool) {
	raw, isText, ok := s.rawText(b)
	return string(raw), isText, ok
}

// rawText is text without copying the value out of b.
func (s jsonSpan) rawText(b []byte) (v []byte, isText, ok bool) {
	if s.kind != '"' {
		return nil, false, true
	}
	raw := b[s.start+1 : s.end-1]
	if bytes.IndexByte(raw, '\\') >= 0 {
		return nil, false, false
	}
	return raw, true, true
}

// textOrEmpty is coalesce(json_extract(…), ”): a string, or ” for a
// value that is absent or null; ok is false for any other value (which
// SQLite would convert) and an escaped string.
func (s jsonSpan) textOrEmpty(b []byte) (string, bool) {
	switch s.kind {
	case 0, 'n':
		return "", true
	case '"':
		v, _, ok := s.text(b)
		return v, ok
	}
	return "", false
}

// member is the value of the member name of the object s (absent when s
// is not an object); ok is false where jsonMembers's is.
func (s jsonSpan) member(b []byte, name string) (jsonSpan, bool) {
	if s.kind != '{' {
		return jsonSpan{}, true
	}
	var m [1]jsonSpan
	ok := jsonMembers(b, s, m[:], name)
	return m[0], ok
}

// checkTop is what 0010 reads of a body's top level.
type checkTop struct {
	subject, action, outcome, context, asOf, measures jsonSpan
}

// maxDepth bounds the nesting read here, far below SQLite's 1 000, so that
// both agree a body is valid.
const maxDepth = 64

// readCheckTop validates b as strict JSON (RFC 8259) and returns the members of
// its top-level object that 0010 reads; ok is false for anything else, a
// repeated member among those, or a member name with an escape.
func readCheckTop(b []byte) (checkTop, bool) {
	var t checkTop
	sp, end, ok := jsonValue(b, jsonSpace(b, 0), 0)
	if !ok || jsonSpace(b, end) != len(b) || sp.kind != '{' {
		return t, false
	}
	var m [6]jsonSpan
	if !jsonMembers(b, sp, m[:], "subject", "action", "outcome", "context", "as_of", "measures") {
		return t, false
	}
	t.subject, t.action, t.outcome, t.context, t.asOf, t.measures = m[0], m[1], m[2], m[3], m[4], m[5]
	return t, true
}

// jsonMembers sets out[n] to the value of the member names[n] of the object
// s (a value jsonValue accepted), absent ones left as they are (callers pass
// zero spans, on the stack); it returns false when one of them appears
// twice or any member name has an escape (SQLite matches names after
// unescaping).
func jsonMembers(b []byte, s jsonSpan, out []jsonSpan, names ...string) bool {
	i := jsonSpace(b, s.start+1)
	if b[i] == '}' {
		return true
	}
	for {
		kStart := i
		_, kEnd, _ := jsonValue(b, i, 0)
		key := b[kStart+1 : kEnd-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			return false
		}
		i = jsonSpace(b, kEnd)
		i = jsonSpace(b, i+1) // ':'
		v, end, _ := jsonValue(b, i, 0)
		for n, name := range names {
			if string(key) == name {
				if out[n].present() {
					return false
				}
				out[n] = v
			}
		}
		i = jsonSpace(b, end)
		if b[i] == '}' {
			return true
		}
		i = jsonSpace(b, i+1) // ','
	}
}

// jsonEach calls fn with each element of the array s (a value jsonValue
// accepted) until fn returns false, and returns whether none did.
func jsonEach(b []byte, s jsonSpan, fn func(jsonSpan) bool) bool {
	i := jsonSpace(b, s.start+1)
	if b[i] == ']' {
		return true
	}
	for {
		v, end, _ := jsonValue(b, i, 0)
		if !fn(v) {
			return false
		}
		i = jsonSpace(b, end)
		if b[i] == ']' {
			return true
		}
		i = jsonSpace(b, i+1)
	}
}

func jsonSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// jsonValue reads the strict JSON value at b[i:] and returns it and where
// it ends; ok is false if it is not one, or nests deeper than maxDepth.
func jsonValue(b []byte, i, depth int) (jsonSpan, int, bool) {
	if i >= len(b) {
		return jsonSpan{}, i, false
	}
	start, c := i, b[i]
	sp := func(end int) jsonSpan { return jsonSpan{start, end, c} }
	switch {
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return jsonSpan{}, i, false
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = jsonSpace(b, i+1)
		if i < len(b) && b[i] == closer {
			return sp(i + 1), i + 1, true
		}
		for {
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return jsonSpan{}, i, false
				}
				_, end, ok := jsonString(b, i)
				if !ok {
					return jsonSpan{}, i, false
				}
				i = jsonSpace(b, end)
				if i >= len(b) || b[i] != ':' {
					return jsonSpan{}, i, false
				}
				i = jsonSpace(b, i+1)
			}
			_, end, ok := jsonValue(b, i, depth+1)
			if !ok {
				return jsonSpan{}, i, false
			}
			i = jsonSpace(b, end)
			if i >= len(b) {
				return jsonSpan{}, i, false
			}
			if b[i] == closer {
				return sp(i + 1), i + 1, true
			}
			if b[i] != ',' {
				return jsonSpan{}, i, false
			}
			i = jsonSpace(b, i+1)
		}
	case c == '"':
		return jsonString(b, i)
	case c == 't':
		return jsonLiteral(b, i, "true")
	case c == 'f':
		return jsonLiteral(b, i, "false")
	case c == 'n':
		return jsonLiteral(b, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return jsonNumber(b, i)
	}
	return jsonSpan{}, i, false
}

func jsonLiteral(b []byte, i int, lit string) (jsonSpan, int, bool) {
	if !bytes.HasPrefix(b[i:], []byte(lit)) {
		return jsonSpan{}, i, false
	}
	return jsonSpan{i, i + len(lit), lit[0]}, i + len(lit), true
}

func jsonString(b []byte, i int) (jsonSpan, int, bool) {
	start := i
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return jsonSpan{start, i + 1, '"'}, i + 1, true
		case c < 0x20:
			return jsonSpan{}, i, false
		case c == '\\':
			i++
			if i >= len(b) {
				return jsonSpan{}, i, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return jsonSpan{}, i, false
				}
				for _, h := range b[i+1 : i+5] {
					if !jsonHex(h) {
						return jsonSpan{}, i, false
					}
				}
				i += 4
			default:
				return jsonSpan{}, i, false
			}
		}
	}
	return jsonSpan{}, i, false
}

func jsonHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// jsonNumber reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func jsonNumber(b []byte, i int) (jsonSpan, int, bool) {
	start := i
	digits := func() bool {
		n := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > n
	}
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return jsonSpan{}, i, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return jsonSpan{}, i, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return jsonSpan{}, i, false
		}
	}
	return jsonSpan{start, i, b[start]}, i, true
}

// derivedInserts appends to stmts the inserts of the rows the records recs,
// stored from index first, derive (checkRows): one multi-row statement per
// chunk of each table, then a pair per record left to the triggers' SQL.
func (s *Store) derivedInserts(stmts []Stmt, recs []evidence.Record, first uint64) []Stmt {
	var c checkRows
	for i := range recs {
		c.add(&recs[i], int64(first)+int64(i))
	}
	stmts = s.chunked(stmts, insertIndexPrefix, "", 8, indexPerInsert, c.indexArgs())
	stmts = s.chunked(stmts, insertListsPrefix, "", 2, listsPerInsert, c.listsArgs())
	return append(stmts, c.slow...)
}

// chunked appends the multi-row inserts of args, cols a row, in chunks of
// chunkRows rows up to limit.
func (s *Store) chunked(stmts []Stmt, prefix, suffix string, cols, limit int, args []any) []Stmt {
	for rows := len(args) / cols; rows > 0; {
		n := chunkRows(rows, limit)
		stmts = append(stmts, Stmt{s.multiRowInsert(prefix, suffix, cols, n), args[:n*cols]})
		args, rows = args[n*cols:], rows-n
	}
	return stmts
}
