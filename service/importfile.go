package service

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

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

// maxLineLen caps one line of an import file.
const maxLineLen = 64 << 10

// ParseImport reads a CSV or NDJSON import file. It returns every input
// with its line number, and every malformed line; a caller applies the
// file only when there are none. progress, if not nil, is called with the
// number of bytes read so far.
func ParseImport(r io.Reader, format ImportFormat, progress func(n int64)) ([]EntryInput, []int, []LineError, error) {
	cr := &countingReader{r: r, progress: progress}
	switch format {
	case FormatNDJSON:
		return parseNDJSON(cr)
	case FormatCSV:
		return parseCSV(cr)
	}
	return nil, nil, nil, fmt.Errorf("%w: unknown format %q", ErrImportRejected, format)
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

func parseNDJSON(r io.Reader) ([]EntryInput, []int, []LineError, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLineLen)
	var inputs []EntryInput
	var lines []int
	var bad []LineError
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if line == 1 {
			b = bytes.TrimPrefix(b, []byte("\ufeff"))
		}
		if len(b) == 0 {
			continue
		}
		if len(inputs)+len(bad) >= MaxImport {
			return nil, nil, nil, fmt.Errorf("%w: more than %d lines", ErrImportTooLarge, MaxImport)
		}
		var in EntryInput
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			bad = append(bad, LineError{Line: line, Err: fmt.Errorf("malformed JSON: %w", err)})
			continue
		}
		if dec.More() {
			bad = append(bad, LineError{Line: line, Err: errors.New("more than one JSON value on the line")})
			continue
		}
		inputs = append(inputs, in)
		lines = append(lines, line)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, nil, append(bad, LineError{Line: line + 1, Err: fmt.Errorf("line longer than %d bytes", maxLineLen)}), nil
		}
		return nil, nil, nil, fmt.Errorf("read import: %w", err)
	}
	return inputs, lines, bad, nil
}

func parseCSV(r io.Reader) ([]EntryInput, []int, []LineError, error) {
	cr := csv.NewReader(bufio.NewReader(r))
	cr.FieldsPerRecord = 0
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, []LineError{{Line: 1, Err: errors.New("empty file: a header row is required")}}, nil
		}
		return nil, nil, []LineError{{Line: 1, Err: fmt.Errorf("header: %w", err)}}, nil
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		known := false
		for _, c := range csvColumns {
			if h == c {
				known = true
			}
		}
		if !known {
			return nil, nil, []LineError{{Line: 1, Err: fmt.Errorf("unknown column %q (known: %s)", h, strings.Join(csvColumns, ", "))}}, nil
		}
		if _, dup := col[h]; dup {
			return nil, nil, []LineError{{Line: 1, Err: fmt.Errorf("column %q appears twice", h)}}, nil
		}
		col[h] = i
	}
	for _, c := range requiredCSV {
		if _, ok := col[c]; !ok {
			return nil, nil, []LineError{{Line: 1, Err: fmt.Errorf("missing column %q", c)}}, nil
		}
	}
	var inputs []EntryInput
	var lines []int
	var bad []LineError
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				bad = append(bad, LineError{Line: pe.StartLine, Err: pe.Err})
				if errors.Is(pe.Err, csv.ErrFieldCount) {
					continue
				}
				// A quoting error desynchronises the reader: stop here.
				return nil, nil, bad, nil
			}
			return nil, nil, nil, fmt.Errorf("read import: %w", err)
		}
		// FieldPos is only defined for a record that was read without error.
		line, _ := cr.FieldPos(0)
		if len(inputs)+len(bad) >= MaxImport {
			return nil, nil, nil, fmt.Errorf("%w: more than %d lines", ErrImportTooLarge, MaxImport)
		}
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
		var lineErr error
		if in.DecidedAt, err = parseTime(get("decided_at")); err != nil {
			lineErr = fmt.Errorf("decided_at: %w", err)
		} else if in.PublishedAt, err = parseTime(get("published_at")); err != nil {
			lineErr = fmt.Errorf("published_at: %w", err)
		}
		if refs := get("evidence_refs"); refs != "" {
			for _, r := range strings.Split(refs, ";") {
				if r = strings.TrimSpace(r); r != "" {
					in.EvidenceRefs = append(in.EvidenceRefs, r)
				}
			}
		}
		if rp := get("responsible_persons"); rp != "" && lineErr == nil {
			for _, pair := range strings.Split(rp, ";") {
				role, id, ok := strings.Cut(strings.TrimSpace(pair), ":")
				if !ok {
					lineErr = fmt.Errorf("responsible_persons: %q is not role:id", pair)
					break
				}
				in.ResponsiblePersons = append(in.ResponsiblePersons, policy.ResponsiblePerson{ID: strings.TrimSpace(id), Role: policy.Role(strings.TrimSpace(role))})
			}
		}
		if lineErr != nil {
			bad = append(bad, LineError{Line: line, Err: lineErr})
			continue
		}
		inputs = append(inputs, in)
		lines = append(lines, line)
	}
	return inputs, lines, bad, nil
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
