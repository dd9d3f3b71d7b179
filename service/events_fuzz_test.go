package service

import (
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
