package service

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/credgate/credgate/policy"
)

// FuzzParseWatchlist: no upload makes the parser panic; what it accepts
// are normalised subjects a check would accept, and every line it refuses
// lies within the upload.
func FuzzParseWatchlist(f *testing.F) {
	f.Add([]byte("subject\n91350100M000100Y43\n\n# loans\n914403001922038216,loan-7\n"))
	f.Add([]byte("\ufeff11010519491231002x\r\n"))
	f.Add([]byte("91350100M000100Y4X\nnot a subject\n" + strings.Repeat("9", 300) + "\n"))
	f.Add([]byte("\xff\xfe,\n"))
	f.Add([]byte("\"subject\"\n\"91350100M000100Y43\",\"a, b\"\n\"x\"\"y\n"))
	caller := Caller{ClientID: "bank", Role: RolePartner}
	f.Fuzz(func(t *testing.T, data []byte) {
		subjects, err := ParseWatchlist(strings.NewReader(string(data)), caller)
		maxLine := strings.Count(string(data), "\n") + 2
		if we, ok := err.(*WatchlistError); ok {
			for _, l := range we.Lines {
				if l.Line < 1 || l.Line > maxLine {
					t.Fatalf("line %d outside 1..%d", l.Line, maxLine)
				}
			}
			return
		}
		if err != nil {
			return
		}
		for _, s := range subjects {
			id, err := policy.ParseSubjectID(s)
			if err != nil || id.Value != s {
				t.Fatalf("accepted %q, which a check reads as %q (%v)", s, id.Value, err)
			}
		}
	})
}

// FuzzParseCursor: a cursor is accepted only in its one canonical
// spelling, and reads back as itself.
func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{"", "0", "42", "007", "-1", "1e3", "９", "18446744073709551616", " 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseCursor(s)
		if err != nil {
			return
		}
		if s != "" && strconv.FormatInt(n, 10) != s || n < 0 {
			t.Fatalf("%q read as %d", s, n)
		}
	})
}

// TestParseWatchlistQuotedCSV: a spreadsheet's CSV quotes its fields; the
// first field is taken without its quotes (it was read as the 20-byte
// `"9135…"` and refused), a quoted header is skipped, and a line whose
// quotes do not close is refused with its line number.
func TestParseWatchlistQuotedCSV(t *testing.T) {
	caller := Caller{ClientID: "bank", Role: RolePartner}
	got, err := ParseWatchlist(strings.NewReader("\ufeff\"subject\",\"note\"\n\"91350100M000100Y43\",\"loan, 7\"\n914403001922038216,x\n\" 11010519491231002X \"\n"), caller)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"91350100M000100Y43", "914403001922038216", "11010519491231002X"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %q, want %q", got, want)
	}
	_, err = ParseWatchlist(strings.NewReader("91350100M000100Y43\n\"914403001922038216,x\n"), caller)
	we, ok := err.(*WatchlistError)
	if !ok || len(we.Lines) != 1 || we.Lines[0].Line != 2 || !errors.Is(we.Lines[0].Err, ErrInvalidWatchlist) {
		t.Fatalf("an unclosed quote: %v", err)
	}
}
