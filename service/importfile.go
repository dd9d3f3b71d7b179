package service

import (
	"bufio"
	"bytes"
	"cmp"
	"container/heap"
	"context"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/credgate/credgate/internal/strictjson"
	"github.com/credgate/credgate/policy"
)

// ImportFormat is the format of a bulk import file.
type ImportFormat string

// Import formats.
const (
	FormatCSV    ImportFormat = "csv"
	FormatNDJSON ImportFormat = "ndjson"
)

// CSV columns of an import file. The header row names them, in any order;
// evidence_refs are separated by ";", responsible_persons are
// "role:id;role:id".
var csvColumns = []string{"subject_id", "list", "originating_department", "reason", "legal_basis",
	"decided_at", "published_at", "evidence_refs", "responsible_persons"}

var requiredCSV = []string{"subject_id", "list", "originating_department", "reason", "legal_basis", "decided_at", "published_at"}

// maxLineLen caps one line of an import file: as much as the body of
// one entry sent alone (gateway.MaxJSONBody).
const maxLineLen = 64 << 10

// ErrLineTooLong: a line of an import file is longer than maxLineLen.
var ErrLineTooLong = errors.New("line too long")

// ParseImport reads a whole CSV or NDJSON import file into memory (at most
// MaxImport lines: upstream sources deliver such files). It returns every
// input with its line number, and every malformed line; a caller applies
// the file only when there are none. progress, if not nil, is called with
// the number of bytes read so far. Files of any size are streamed with
// ImportReader instead (Entries.ImportFile).
func ParseImport(r io.Reader, format ImportFormat, progress func(n int64)) ([]EntryInput, []int, []LineError, error) {
	ir, err := NewImportReader(r, format, progress)
	if err != nil {
		return nil, nil, nil, err
	}
	var (
		inputs []EntryInput
		lines  []int
		bad    []LineError
	)
	for {
		in, line, err := ir.Next()
		var le LineError
		switch {
		case err == nil:
			inputs = append(inputs, in)
			lines = append(lines, line)
		case errors.Is(err, io.EOF):
			return inputs, lines, bad, nil
		case errors.As(err, &le):
			bad = append(bad, le)
		default:
			return nil, nil, nil, err
		}
		if len(inputs)+len(bad) > MaxImport {
			return nil, nil, nil, fmt.Errorf("%w: more than %d lines", ErrImportTooLarge, MaxImport)
		}
	}
}

// ImportReader reads an import file one input at a time, holding one line
// in memory, so that a file of any size streams through.
type ImportReader struct {
	next func() (EntryInput, int, error)
	done bool
}

// NewImportReader reads r in format; progress, if not nil, is called with
// the number of bytes read so far.
func NewImportReader(r io.Reader, format ImportFormat, progress func(n int64)) (*ImportReader, error) {
	cr := &countingReader{r: r, progress: progress}
	switch format {
	case FormatNDJSON:
		return &ImportReader{next: ndjsonInputs(cr)}, nil
	case FormatCSV:
		return &ImportReader{next: csvInputs(cr)}, nil
	}
	return nil, fmt.Errorf("%w: unknown format %q", ErrImportRejected, format)
}

// Next returns the next input and its line number. A malformed line is a
// LineError (reading goes on after it, except after a header or quoting
// error, which end the file); io.EOF ends the file; any other error is the
// reader's.
func (ir *ImportReader) Next() (EntryInput, int, error) {
	if ir.done {
		return EntryInput{}, 0, io.EOF
	}
	in, line, err := ir.next()
	if err != nil && !errors.As(err, new(LineError)) {
		ir.done = true
	}
	return in, line, err
}

type countingReader struct {
	r        io.Reader
	n        int64
	progress func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.progress != nil && n > 0 {
		c.progress(c.n)
	}
	return n, err
}

func ndjsonInputs(r io.Reader) func() (EntryInput, int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLineLen)
	line := 0
	ended := false
	return func() (EntryInput, int, error) {
		if ended {
			return EntryInput{}, 0, io.EOF
		}
		for sc.Scan() {
			line++
			b := bytes.TrimSpace(sc.Bytes())
			if line == 1 {
				b = bytes.TrimPrefix(b, []byte("\ufeff"))
			}
			if len(b) == 0 {
				continue
			}
			// A line is read as the body of POST /v1/admin/entries is:
			// the same bytes are refused the same way by either door.
			var in EntryInput
			if err := strictjson.Decode(b, &in); err != nil {
				return EntryInput{}, line, LineError{Line: line, Err: err}
			}
			return in, line, nil
		}
		ended = true
		if err := sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				return EntryInput{}, line + 1, LineError{Line: line + 1, Err: fmt.Errorf("%w: more than %d bytes", ErrLineTooLong, maxLineLen)}
			}
			return EntryInput{}, 0, fmt.Errorf("read import: %w", err)
		}
		return EntryInput{}, 0, io.EOF
	}
}

func csvInputs(r io.Reader) func() (EntryInput, int, error) {
	cr := newCSVReader(r)
	cr.FieldsPerRecord = 0
	cr.ReuseRecord = true
	var col map[string]int
	ended := false
	// stop ends the file after a LineError that desynchronises the reader.
	stop := func(le LineError) (EntryInput, int, error) {
		ended = true
		return EntryInput{}, le.Line, le
	}
	return func() (EntryInput, int, error) {
		if ended {
			return EntryInput{}, 0, io.EOF
		}
		if col == nil {
			var le *LineError
			col, le = csvHeader(cr)
			if le != nil {
				return stop(*le)
			}
		}
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			ended = true
			return EntryInput{}, 0, io.EOF
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				le := LineError{Line: pe.StartLine, Err: pe.Err}
				if errors.Is(pe.Err, csv.ErrFieldCount) {
					return EntryInput{}, le.Line, le
				}
				// A quoting error desynchronises the reader: stop here.
				return stop(le)
			}
			ended = true
			return EntryInput{}, 0, fmt.Errorf("read import: %w", err)
		}
		// FieldPos is only defined for a record that was read without error.
		line, _ := cr.FieldPos(0)
		if le := csvUTF8(cr, rec, col); le != nil {
			return EntryInput{}, le.Line, *le
		}
		in, err := csvInput(rec, col)
		if err != nil {
			return EntryInput{}, line, LineError{Line: line, Err: err}
		}
		return in, line, nil
	}
}

// csvHeader reads the header row: the column of each name.
func csvHeader(cr *csvFile) (map[string]int, *LineError) {
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &LineError{Line: 1, Err: errors.New("empty file: a header row is required")}
		}
		return nil, &LineError{Line: 1, Err: fmt.Errorf("header: %w", err)}
	}
	for i, h := range header {
		if err := strictjson.ValidText([]byte(h)); err != nil {
			return nil, &LineError{Line: 1, Err: fmt.Errorf("header, column %d: %w", i+1, err)}
		}
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		if !slices.Contains(csvColumns, h) {
			return nil, &LineError{Line: 1, Err: fmt.Errorf("unknown column %q (known: %s)", h, strings.Join(csvColumns, ", "))}
		}
		if _, dup := col[h]; dup {
			return nil, &LineError{Line: 1, Err: fmt.Errorf("column %q appears twice", h)}
		}
		col[h] = i
	}
	for _, c := range requiredCSV {
		if _, ok := col[c]; !ok {
			return nil, &LineError{Line: 1, Err: fmt.Errorf("missing column %q", c)}
		}
	}
	return col, nil
}

// csvUTF8 refuses a record with a field that is not UTF-8, at the line
// the field is on: a file saved in another encoding (GBK, as Excel saves
// CSV on Chinese Windows) would otherwise be stored as mojibake. It refuses
// as well a field holding a control character other than tab, line feed
// and carriage return (strictjson.ValidText), as a JSON body is refused:
// PostgreSQL cannot store U+0000.
func csvUTF8(cr *csvFile, rec []string, col map[string]int) *LineError {
	for i, f := range rec {
		verr := strictjson.ValidText([]byte(f))
		if verr == nil {
			continue
		}
		name := fmt.Sprintf("column %d", i+1)
		for n, c := range col {
			if c == i {
				name = fmt.Sprintf("column %q", n)
			}
		}
		line, _ := cr.FieldPos(i)
		return &LineError{Line: line, Err: fmt.Errorf("%s: %w", name, verr)}
	}
	return nil
}

// csvInput builds the input of one record.
func csvInput(rec []string, col map[string]int) (EntryInput, error) {
	get := func(name string) string {
		if i, ok := col[name]; ok {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	in := EntryInput{
		Subject: get("subject_id"), List: get("list"), OriginatingDepartment: get("originating_department"),
		Reason: get("reason"), LegalBasis: get("legal_basis"),
	}
	var err error
	if in.DecidedAt, err = parseTime(get("decided_at")); err != nil {
		return EntryInput{}, fmt.Errorf("decided_at: %w", err)
	}
	if in.PublishedAt, err = parseTime(get("published_at")); err != nil {
		return EntryInput{}, fmt.Errorf("published_at: %w", err)
	}
	if refs := get("evidence_refs"); refs != "" {
		for _, r := range strings.Split(refs, ";") {
			if r = strings.TrimSpace(r); r != "" {
				in.EvidenceRefs = append(in.EvidenceRefs, r)
			}
		}
	}
	if rp := get("responsible_persons"); rp != "" {
		for _, pair := range strings.Split(rp, ";") {
			role, id, ok := strings.Cut(strings.TrimSpace(pair), ":")
			if !ok {
				return EntryInput{}, fmt.Errorf("responsible_persons: %q is not role:id", pair)
			}
			in.ResponsiblePersons = append(in.ResponsiblePersons, policy.ResponsiblePerson{ID: strings.TrimSpace(id), Role: policy.Role(strings.TrimSpace(role))})
		}
	}
	return in, nil
}

// parseTime accepts RFC 3339 timestamps and plain dates (midnight China
// Standard Time, as decisions are dated in the source documents).
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("is required")
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, chinaStandardTime); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor YYYY-MM-DD", s)
}

// chinaStandardTime is UTC+8 without depending on the tz database.
var chinaStandardTime = time.FixedZone("CST", 8*3600)

// ErrDuplicateEntry: one import file lists the same entry twice, or an
// entry already stored (a file imported again). It is wrapped together
// with policy.ErrInvalidEntry.
var ErrDuplicateEntry = errors.New("duplicate entry")

// importDuplicates finds the lines of one import file that repeat an
// entry of an earlier line: the same subject, list, originating
// department and decided_at (as prepared: trimmed, UTC, to the
// microsecond), which is one department's one decision to list the
// subject there. Imported twice, it would be two entries: two listings,
// which repair locks count (首次/再次, 篇十三 第十五条), two events for
// subscribers. The store keys entries by their generated id only, so
// nothing else would stop it; the later line is refused, naming the
// earlier, and the whole file with it. A line repeating a stored entry is
// refused likewise, once the file is staged (storedDuplicateLines): the
// store finds the keys, and these runs the lines that hold them.
//
// A file of any size streams (ImportFile), so a line is remembered by 16
// bytes and no text: a 96-bit keyed hash of that key and the line number,
// in runs sorted as they fill. The first run stays in memory; once there
// is a second, every run is written to a temporary file (unlinked at once,
// so nothing is left behind) and the runs are merged from it at the end of
// the file, a buffer each: memory stays flat in the file's size (160 MB of
// runs held in memory at 10⁷ lines was 400 MB at the peak). With 10⁸
// entries, the chance that two different keys share a hash is below 10⁻¹³.
type importDuplicates struct {
	h1, h2 maphash.Hash
	cur    []keyLine
	n      int
	first  []keyLine // the first run, while it is the only one
	f      *os.File  // the runs, once there are two
	runs   []int64   // each run's length in keys, in the file's order
	err    error     // the first write's failure
}

// keyLine is one line's key hash and number.
type keyLine struct {
	a    uint64
	b    uint32
	line uint32
}

// keyLineSize is a keyLine's size in the runs' file.
const keyLineSize = 16

// dupRun is how many lines a sorted run holds (1 MiB).
const dupRun = 1 << 16

func newImportDuplicates() *importDuplicates {
	d := &importDuplicates{}
	d.h1.SetSeed(maphash.MakeSeed())
	d.h2.SetSeed(maphash.MakeSeed())
	return d
}

// add remembers e's key at line, up to MaxImportEntries lines (a file
// with more is refused anyway).
func (d *importDuplicates) add(e policy.Entry, line int) {
	if d.n >= MaxImportEntries || d.err != nil {
		return
	}
	d.n++
	if d.cur == nil {
		d.cur = make([]keyLine, 0, dupRun)
	}
	// Line numbers past 2³²-1 (a file of billions of blank lines) are
	// named as the last one that fits.
	k := d.hash(KeyOf(e))
	k.line = uint32(min(line, math.MaxUint32))
	d.cur = append(d.cur, k)
	if len(d.cur) == dupRun {
		d.seal()
	}
}

// hash returns k's hash, without a line. The time is hashed as an
// instant: in UTC, whatever zone it came in.
func (d *importDuplicates) hash(k EntryKey) keyLine {
	d.h1.Reset()
	d.h2.Reset()
	for _, f := range []string{k.Subject, k.List, k.OriginatingDepartment, k.DecidedAt.UTC().Format(time.RFC3339Nano)} {
		for _, h := range []*maphash.Hash{&d.h1, &d.h2} {
			h.WriteString(f)
			h.WriteByte(0)
		}
	}
	return keyLine{a: d.h1.Sum64(), b: uint32(d.h2.Sum64())}
}

// seal sorts the current run and keeps it: in memory if it is the first,
// else in the runs' file (the first one too, then), reusing its buffer.
func (d *importDuplicates) seal() {
	slices.SortFunc(d.cur, compareKeyLine)
	if d.first == nil && d.f == nil {
		d.first, d.cur = d.cur, nil
		return
	}
	if d.f == nil {
		f, err := os.CreateTemp("", "credgate-import-keys-*")
		if err != nil {
			d.err = fmt.Errorf("duplicate lines: a file for the keys: %w", err)
			return
		}
		_ = os.Remove(f.Name()) // unlinked: gone with the process, whatever happens
		d.f = f
		d.write(d.first)
		d.first = nil
	}
	d.write(d.cur)
	d.cur = d.cur[:0]
}

func (d *importDuplicates) write(run []keyLine) {
	if d.err != nil {
		return
	}
	buf := make([]byte, 0, 64<<10)
	for i, k := range run {
		buf = binary.LittleEndian.AppendUint64(buf, k.a)
		buf = binary.LittleEndian.AppendUint32(buf, k.b)
		buf = binary.LittleEndian.AppendUint32(buf, k.line)
		if len(buf) == cap(buf) || i == len(run)-1 {
			if _, err := d.f.Write(buf); err != nil {
				d.err = fmt.Errorf("duplicate lines: write the keys: %w", err)
				return
			}
			buf = buf[:0]
		}
	}
	d.runs = append(d.runs, int64(len(run)))
}

// linesOf returns the line of each of keys (0 for a key of no line): the
// first line holding it. It reads every run once, in the order written.
func (d *importDuplicates) linesOf(keys []EntryKey) ([]int, error) {
	if len(d.cur) > 0 {
		d.seal()
	}
	if d.err != nil {
		return nil, d.err
	}
	type hk struct {
		a uint64
		b uint32
	}
	want := make(map[hk][]int, len(keys))
	for i, k := range keys {
		h := d.hash(k)
		want[hk{h.a, h.b}] = append(want[hk{h.a, h.b}], i)
	}
	out := make([]int, len(keys))
	see := func(k keyLine) {
		for _, i := range want[hk{k.a, k.b}] {
			if out[i] == 0 || int(k.line) < out[i] {
				out[i] = int(k.line)
			}
		}
	}
	if d.f == nil {
		for _, k := range d.first {
			see(k)
		}
		return out, nil
	}
	var total int64
	for _, n := range d.runs {
		total += n
	}
	c := &runCursor{r: bufio.NewReaderSize(io.NewSectionReader(d.f, 0, total*keyLineSize), 64<<10), left: total}
	for {
		ok, err := c.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			return out, nil
		}
		see(c.k)
	}
}

// close lets the runs' file go.
func (d *importDuplicates) close() {
	if d.f != nil {
		_ = d.f.Close()
		d.f = nil
	}
}

func compareKeyLine(x, y keyLine) int {
	return cmp.Or(cmp.Compare(x.a, y.a), cmp.Compare(x.b, y.b), cmp.Compare(x.line, y.line))
}

// runCursor reads one sorted run: from memory, or from its part of the
// runs' file through a small buffer.
type runCursor struct {
	k    keyLine
	mem  []keyLine
	r    *bufio.Reader
	left int64
}

// next moves to the run's next key; false at its end.
func (c *runCursor) next() (bool, error) {
	if c.r == nil {
		if len(c.mem) == 0 {
			return false, nil
		}
		c.k, c.mem = c.mem[0], c.mem[1:]
		return true, nil
	}
	if c.left == 0 {
		return false, nil
	}
	var b [keyLineSize]byte
	if _, err := io.ReadFull(c.r, b[:]); err != nil {
		return false, fmt.Errorf("duplicate lines: read the keys: %w", err)
	}
	c.left--
	c.k = keyLine{a: binary.LittleEndian.Uint64(b[:8]), b: binary.LittleEndian.Uint32(b[8:12]), line: binary.LittleEndian.Uint32(b[12:])}
	return true, nil
}

// lines returns, in line order, a LineError for every line that repeats
// an earlier one, naming the first line with its key, at most
// MaxImportErrors of them (the earliest). The runs are merged: lines
// with one key come together, the earliest first.
func (d *importDuplicates) lines() ([]LineError, error) {
	if len(d.cur) > 0 {
		d.seal()
	}
	if d.err != nil {
		return nil, d.err
	}
	var h runHeap
	add := func(c *runCursor) error {
		ok, err := c.next()
		if ok {
			h = append(h, c)
		}
		return err
	}
	if d.f == nil {
		if err := add(&runCursor{mem: d.first}); err != nil {
			return nil, err
		}
	} else {
		var off int64
		for _, n := range d.runs {
			c := &runCursor{r: bufio.NewReaderSize(io.NewSectionReader(d.f, off*keyLineSize, n*keyLineSize), 4096), left: n}
			off += n
			if err := add(c); err != nil {
				return nil, err
			}
		}
	}
	heap.Init(&h)
	// The earliest duplicate lines, at most MaxImportErrors: a max-heap of
	// (line, first) pairs, so a file repeating one line millions of times
	// costs no more than one repeating it a thousand.
	var kept dupHeap
	var (
		prev  keyLine
		first uint32
	)
	for n := 0; h.Len() > 0; n++ {
		c := h[0]
		k := c.k
		ok, err := c.next()
		if err != nil {
			return nil, err
		}
		if ok {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
		if n > 0 && k.a == prev.a && k.b == prev.b {
			if len(kept) < MaxImportErrors {
				heap.Push(&kept, [2]uint32{k.line, first})
			} else if k.line < kept[0][0] {
				kept[0] = [2]uint32{k.line, first}
				heap.Fix(&kept, 0)
			}
		} else {
			first = k.line
		}
		prev = k
	}
	slices.SortFunc(kept, func(x, y [2]uint32) int { return cmp.Compare(x[0], y[0]) })
	out := make([]LineError, 0, len(kept))
	for _, p := range kept {
		out = append(out, LineError{Line: int(p[0]), Err: fmt.Errorf("%w: %w: the same entry as line %d (subject_id, list, originating_department and decided_at): a file lists each entry once",
			policy.ErrInvalidEntry, ErrDuplicateEntry, p[1])})
	}
	return out, nil
}

// runHeap orders sorted runs by their current key.
type runHeap []*runCursor

func (h runHeap) Len() int           { return len(h) }
func (h runHeap) Less(i, j int) bool { return compareKeyLine(h[i].k, h[j].k) < 0 }
func (h runHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)        { *h = append(*h, x.(*runCursor)) }
func (h *runHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// dupHeap keeps the latest of the kept duplicate lines on top.
type dupHeap [][2]uint32

func (h dupHeap) Len() int           { return len(h) }
func (h dupHeap) Less(i, j int) bool { return h[i][0] > h[j][0] }
func (h dupHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dupHeap) Push(x any)        { *h = append(*h, x.([2]uint32)) }
func (h *dupHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// withDuplicates adds the duplicate lines d found to bad, in line order,
// at most MaxImportErrors in all.
func withDuplicates(bad []LineError, d *importDuplicates) ([]LineError, error) {
	dups, err := d.lines()
	if err != nil || len(dups) == 0 {
		return bad, err
	}
	bad = append(bad, dups...)
	slices.SortStableFunc(bad, func(x, y LineError) int { return cmp.Compare(x.Line, y.Line) })
	return bad[:min(len(bad), MaxImportErrors)], nil
}

// storedDuplicateLines returns, in line order, a LineError for each entry
// of load id (staged) and of held that repeats a stored entry, naming it,
// at most MaxImportErrors of them. d holds the line of every entry's key.
//
// A stored entry counts whatever its status. Expired, repaired or exited,
// it is still that decision's one listing: imported again, it would be a
// second listing, which the repair rules count (再次, 篇十三 第十五条), and
// a second event for subscribers. Revoked, it counts too: revocation
// ended the listing (an objection upheld, 篇二, 篇十三 第十一条; a source
// that withdrew it), and the same decision imported again would list the
// subject anew behind that decision, from yesterday's file. A department
// that decides again decides on another day, which is another key.
func (s *Entries) storedDuplicateLines(ctx context.Context, id string, held []policy.Entry, d *importDuplicates) ([]LineError, error) {
	found, err := s.store.StoredDuplicates(ctx, id, held, MaxImportErrors)
	if err != nil || len(found) == 0 {
		return nil, err
	}
	keys := make([]EntryKey, len(found))
	for i, f := range found {
		keys[i] = f.Key
	}
	lines, err := d.linesOf(keys)
	if err != nil {
		return nil, err
	}
	out := make([]LineError, len(found))
	for i, f := range found {
		out[i] = LineError{Line: lines[i], Err: fmt.Errorf("%w: %w: the same entry as stored entry %s (subject_id, list, originating_department and decided_at): it is listed already",
			policy.ErrInvalidEntry, ErrDuplicateEntry, f.StoredID)}
	}
	slices.SortStableFunc(out, func(x, y LineError) int { return cmp.Compare(x.Line, y.Line) })
	return out, nil
}
