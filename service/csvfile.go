package service

import (
	"bufio"
	"encoding/csv"
	"io"
)

// utf8BOM is the byte-order mark spreadsheets on Windows put before UTF-8.
const utf8BOM = "\ufeff"

// newCSVReader reads the CSV files partners and departments upload
// (imports, screenings, approvals for coverage), past a UTF-8 byte-order
// mark at the start: encoding/csv would take the mark for part of the
// first header, and a quoted one (the mark, then "id") for a bare quote in
// an unquoted field.
func newCSVReader(r io.Reader) *csv.Reader {
	br := bufio.NewReader(r)
	if b, err := br.Peek(len(utf8BOM)); err == nil && string(b) == utf8BOM {
		_, _ = br.Discard(len(utf8BOM))
	}
	return csv.NewReader(br)
}
