package service

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseImportCSV(t *testing.T) {
	in := "\ufeffsubject_id,list,originating_department,reason,legal_basis,decided_at,published_at,evidence_refs,responsible_persons\n" +
		"91350100M000100Y43,safety_production_blacklist,应急管理部,重大事故,《安全生产法》,2026-01-01,2026-01-02T08:00:00+08:00,文1;文2,legal_representative:11010519491231002X\n" +
		"\n" +
		"914403001922038216,court_dishonest_debtor,某法院,失信,《民事诉讼法》,2026-01-01,2026-01-02,,\n"
	inputs, lines, bad, err := ParseImport(strings.NewReader(in), FormatCSV, nil)
	if err != nil || len(bad) != 0 {
		t.Fatalf("err %v, bad %v", err, bad)
	}
	if len(inputs) != 2 || lines[0] != 2 || lines[1] != 4 {
		t.Fatalf("inputs %d, lines %v", len(inputs), lines)
	}
	a := inputs[0]
	if a.Subject != "91350100M000100Y43" || len(a.EvidenceRefs) != 2 || len(a.ResponsiblePersons) != 1 ||
		a.ResponsiblePersons[0].Role != "legal_representative" {
		t.Fatalf("first input %+v", a)
	}
	if want := time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 8*3600)); !a.DecidedAt.Equal(want) {
		t.Fatalf("a plain date is midnight China time: %v", a.DecidedAt)
	}
}

func TestParseImportCSVReportsEveryBadLine(t *testing.T) {
	in := "subject_id,list,originating_department,reason,legal_basis,decided_at,published_at\n" +
		"A,l,d,r,b,2026-01-01,2026-01-02\n" +
		"B,l,d,r,b,yesterday,2026-01-02\n" +
		"C,l,d,r,b,2026-01-01\n" +
		"D,l,d,r,b,2026-01-01,tomorrow\n"
	_, _, bad, err := ParseImport(strings.NewReader(in), FormatCSV, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != 3 || bad[0].Line != 3 || bad[1].Line != 4 || bad[2].Line != 5 {
		t.Fatalf("bad lines %v", bad)
	}
}

func TestParseImportCSVHeader(t *testing.T) {
	for name, in := range map[string]string{
		"empty":          "",
		"unknown column": "subject_id,colour\n",
		"missing column": "subject_id,list\n",
		"duplicate":      "subject_id,subject_id,list,originating_department,reason,legal_basis,decided_at,published_at\n",
	} {
		_, _, bad, err := ParseImport(strings.NewReader(in), FormatCSV, nil)
		if err != nil || len(bad) != 1 || bad[0].Line != 1 {
			t.Errorf("%s: err %v, bad %v", name, err, bad)
		}
	}
}

func TestParseImportNDJSON(t *testing.T) {
	in := `{"subject_id":"91350100M000100Y43","list":"x","originating_department":"d","reason":"r","legal_basis":"b","decided_at":"2026-01-01T00:00:00Z","published_at":"2026-01-02T00:00:00Z"}
{"subject_id":"x","colour":"red"}

not json
{"subject_id":"y"} {"subject_id":"z"}
`
	inputs, lines, bad, err := ParseImport(strings.NewReader(in), FormatNDJSON, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) != 1 || lines[0] != 1 {
		t.Fatalf("inputs %v lines %v", inputs, lines)
	}
	if len(bad) != 3 || bad[0].Line != 2 || bad[1].Line != 4 || bad[2].Line != 5 {
		t.Fatalf("bad %v", bad)
	}
}

func TestParseImportProgress(t *testing.T) {
	in := strings.Repeat(`{"subject_id":"a"}`+"\n", 1000)
	var last int64
	_, _, _, err := ParseImport(strings.NewReader(in), FormatNDJSON, func(n int64) { last = n })
	if err != nil || last != int64(len(in)) {
		t.Fatalf("progress ended at %d of %d (%v)", last, len(in), err)
	}
}

// FuzzParseImport: no input makes the parser panic, and every line it
// reports lies within the file.
func FuzzParseImport(f *testing.F) {
	f.Add([]byte("subject_id,list,originating_department,reason,legal_basis,decided_at,published_at\nA,l,d,r,b,2026-01-01,2026-01-02\n"), true)
	f.Add([]byte("subject_id,list\n\"unterminated,x\n"), true)
	f.Add([]byte(`{"subject_id":"91350100M000100Y43","decided_at":"2026-01-01T00:00:00Z"}`+"\n"), false)
	f.Add([]byte("{\n}\n\xff\xfe"), false)
	f.Fuzz(func(t *testing.T, data []byte, csv bool) {
		format := FormatNDJSON
		if csv {
			format = FormatCSV
		}
		inputs, lines, bad, err := ParseImport(strings.NewReader(string(data)), format, nil)
		if err != nil {
			return
		}
		if len(inputs) != len(lines) {
			t.Fatalf("%d inputs, %d line numbers", len(inputs), len(lines))
		}
		maxLine := strings.Count(string(data), "\n") + 1
		for _, l := range lines {
			if l < 1 || l > maxLine {
				t.Fatalf("line %d outside 1..%d", l, maxLine)
			}
		}
		for _, b := range bad {
			if b.Line < 0 || b.Line > maxLine+1 || !utf8.ValidString(b.Error()) && utf8.Valid(data) {
				t.Fatalf("bad line report %v", b)
			}
		}
	})
}
