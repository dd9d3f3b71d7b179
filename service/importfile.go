package service

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

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
		if !utf8.ValidString(h) {
			return nil, &LineError{Line: 1, Err: fmt.Errorf("header, column %d: %w", i+1, strictjson.ValidUTF8([]byte(h)))}
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
// CSV on Chinese Windows) would otherwise be stored as mojibake.
func csvUTF8(cr *csvFile, rec []string, col map[string]int) *LineError {
	for i, f := range rec {
		if utf8.ValidString(f) {
			continue
		}
		name := fmt.Sprintf("column %d", i+1)
		for n, c := range col {
			if c == i {
				name = fmt.Sprintf("column %q", n)
			}
		}
		line, _ := cr.FieldPos(i)
		return &LineError{Line: line, Err: fmt.Errorf("%s: %w", name, strictjson.ValidUTF8([]byte(f)))}
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
