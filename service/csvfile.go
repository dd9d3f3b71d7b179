package service

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
)

// utf8BOM is the byte-order mark spreadsheets on Windows put before UTF-8.
const utf8BOM = "\ufeff"

// maxCSVRecord caps one record of an uploaded CSV file, as maxLineLen caps
// an NDJSON line: encoding/csv holds a whole record in memory, and a field
// that never ends (an opening quote with no closing one, in a file of
// gigabytes) would otherwise be read to the end of the body.
const maxCSVRecord = maxLineLen

// csvFile reads the CSV files partners and departments upload (imports,
// screenings, approvals for coverage): past a UTF-8 byte-order mark at the
// start (encoding/csv would take the mark for part of the first header,
// and a quoted one, the mark then "id", for a bare quote in an unquoted
// field), and no record longer than maxCSVRecord.
type csvFile struct {
	*csv.Reader
	in       *recordBound
	lastLine int  // the line the last record read began on
	over     bool // a record was too long: the file is not read further
}

func newCSVReader(r io.Reader) *csvFile {
	in := &recordBound{r: r, limit: maxCSVRecord}
	br := bufio.NewReader(in)
	if b, err := br.Peek(len(utf8BOM)); err == nil && string(b) == utf8BOM {
		_, _ = br.Discard(len(utf8BOM))
	}
	return &csvFile{Reader: csv.NewReader(br), in: in}
}

// Read is csv.Reader.Read, bounded: a record longer than maxCSVRecord is a
// *csv.ParseError on the line after the last record (every caller reports
// those by line), and the reads after it fail.
func (f *csvFile) Read() ([]string, error) {
	if f.over {
		return nil, fmt.Errorf("%w: the file is not read past a record longer than %d bytes", ErrLineTooLong, maxCSVRecord)
	}
	rec, err := f.Reader.Read()
	f.in.base = f.Reader.InputOffset() // the next record starts here
	if errors.Is(err, errRecordTooLong) {
		f.over = true
		line := f.lastLine + 1
		return nil, &csv.ParseError{StartLine: line, Line: line,
			Err: fmt.Errorf("%w: a record longer than %d bytes", ErrLineTooLong, maxCSVRecord)}
	}
	if err == nil {
		f.lastLine, _ = f.Reader.FieldPos(0)
	}
	return rec, err
}

var errRecordTooLong = errors.New("csv record too long")

// recordBound passes reads through until more than limit bytes have been
// read past base (where the reader of the records stands).
type recordBound struct {
	r          io.Reader
	read, base int64
	limit      int64
}

func (b *recordBound) Read(p []byte) (int, error) {
	if b.read-b.base > b.limit {
		return 0, errRecordTooLong
	}
	n, err := b.r.Read(p)
	b.read += int64(n)
	return n, err
}
