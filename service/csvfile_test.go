package service

import (
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// TestCSVFilesPastTheByteOrderMark: a CSV saved by a spreadsheet on
// Windows starts with a byte-order mark, and quotes its header when a name
// needs it or always; imports and screenings read it as if the mark were
// not there (encoding/csv alone refused it: bare " in non-quoted-field).
func TestCSVFilesPastTheByteOrderMark(t *testing.T) {
	header := `"subject_id","list","originating_department","reason","legal_basis","decided_at","published_at"` + "\n"
	row := `"91350100M000100Y43","safety_production_blacklist","应急管理部","重大事故","《安全生产法》","2026-01-01","2026-01-02"` + "\n"
	for name, in := range map[string]string{"mark": utf8BOM + header + row, "no mark": header + row, "mark, CRLF": utf8BOM + strings.ReplaceAll(header+row, "\n", "\r\n")} {
		inputs, lines, bad, err := ParseImport(strings.NewReader(in), FormatCSV, nil)
		if err != nil || len(bad) != 0 || len(inputs) != 1 || lines[0] != 2 || inputs[0].Subject != "91350100M000100Y43" {
			t.Errorf("import, %s: %v %v %+v", name, err, bad, inputs)
		}
	}
	for name, in := range map[string]string{"mark, quoted": utf8BOM + "\"id\"\n914403001922038216\n", "mark": utf8BOM + "id\n914403001922038216\n"} {
		n, err := writeScreeningInput(filepath.Join(t.TempDir(), "input"), strings.NewReader(in), FormatCSV)
		if err != nil || n != 1 {
			t.Errorf("screening, %s: %d subjects, %v", name, n, err)
		}
	}
	// A mark anywhere else is data, not skipped.
	if _, _, bad, _ := ParseImport(strings.NewReader(header+utf8BOM+row), FormatCSV, nil); len(bad) != 1 {
		t.Errorf("a mark inside the file: %v", bad)
	}
}

// endless is a CSV body whose third line opens a quoted field that never
// closes: n bytes of it in all, produced as read (never held).
func endless(head string, n int64) io.Reader {
	return io.MultiReader(strings.NewReader(head), io.LimitReader(repeatReader('x'), n))
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// TestCSVRecordsAreBounded: a record longer than maxCSVRecord (here a
// quoted field that never closes, in a body of 256 MiB) is refused at the
// line it starts on, after about that many bytes were read, by imports,
// screenings and coverage alike; encoding/csv alone would read the body
// to its end into one field.
func TestCSVRecordsAreBounded(t *testing.T) {
	const body = 256 << 20
	header := "subject_id,list,originating_department,reason,legal_basis,decided_at,published_at\n"
	row := "91350100M000100Y43,safety_production_blacklist,应急管理部,重大事故,《安全生产法》,2026-01-01,2026-01-02\n"
	src := &countingReader{r: endless(header+row+`914403001922038216,court_dishonest_debtor,法院,"`, body)}
	_, _, bad, err := ParseImport(src, FormatCSV, nil)
	if err != nil || len(bad) != 1 || bad[0].Line != 3 || !errors.Is(bad[0].Err, ErrLineTooLong) {
		t.Fatalf("import: %v %v", err, bad)
	}
	if src.n > 4*maxCSVRecord {
		t.Errorf("import read %d bytes of the body before refusing it", src.n)
	}

	src = &countingReader{r: endless("id\n914403001922038216\n\"", body)}
	_, err = writeScreeningInput(filepath.Join(t.TempDir(), "input"), src, FormatCSV)
	var fe *ScreeningFileError
	if !errors.As(err, &fe) || len(fe.Lines) != 1 || fe.Lines[0].Line != 3 || !errors.Is(fe.Lines[0].Err, ErrLineTooLong) {
		t.Fatalf("screening: %v", err)
	}
	if src.n > 4*maxCSVRecord {
		t.Errorf("screening read %d bytes of the body before refusing it", src.n)
	}
}
