package policy

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseSubjectID checks, for any input, that the parsers do not panic,
// that every error wraps exactly one sentinel, that ParseSubjectID agrees
// with ParseUSCC and ParseResidentID, and that every success is 18 ASCII
// characters of the kind's alphabet and round-trips through String. The
// seed corpus is in testdata/fuzz/FuzzParseSubjectID.
func FuzzParseSubjectID(f *testing.F) {
	for _, s := range []string{
		"91350100M000100Y43",
		identGB11643Example,
		identAmbiguous,
		"914403001922038216",
		"  91350100m000100y43\u3000",
		"１１０１０５１９４９１２３１００２ｘ",
		"91350100MO00100Y43",
		"110105194902300010",
		identGB11643Example1880,
		identLegacyExample,
		"110105491331002",
		"440524188001010015",
		"",
		"\xff\xfe",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		norm := NormalizeIdentifier(raw)
		if again := NormalizeIdentifier(norm); again != norm {
			t.Fatalf("NormalizeIdentifier not idempotent: %q -> %q -> %q", raw, norm, again)
		}
		id, err := ParseSubjectID(raw)
		oid, oerr := ParseUSCC(raw)
		pid, perr := ParseResidentID(raw)
		for _, e := range []error{err, oerr, perr} {
			if e != nil && len(identSentinelsIn(e)) != 1 {
				t.Fatalf("error %q for %q does not wrap exactly one sentinel", e, raw)
			}
		}
		if oerr == nil && oid.Kind != KindOrganization {
			t.Fatalf("ParseUSCC(%q) = %+v", raw, oid)
		}
		if perr == nil && pid.Kind != KindPerson {
			t.Fatalf("ParseResidentID(%q) = %+v", raw, pid)
		}
		if err != nil {
			if !id.IsZero() {
				t.Fatalf("ParseSubjectID(%q) = %+v with error %v", raw, id, err)
			}
			if oerr == nil || perr == nil {
				t.Fatalf("ParseSubjectID(%q) failed (%v) but ParseUSCC: %v, ParseResidentID: %v", raw, err, oerr, perr)
			}
			if errors.Is(err, ErrEmptyIdentifier) != (norm == "") {
				t.Fatalf("ParseSubjectID(%q): %v, normalised %q", raw, err, norm)
			}
			return
		}

		if len(id.Value) != identLen {
			t.Fatalf("ParseSubjectID(%q) = %+v, normalised %q", raw, id, norm)
		}
		if len(norm) == identLegacyLen {
			// A first-generation number: the century 19 inserted and a
			// check digit appended.
			if id.Kind != KindPerson || id.Value[:6] != norm[:6] || id.Value[6:8] != "19" || id.Value[8:17] != norm[6:] {
				t.Fatalf("ParseSubjectID(%q) = %+v, not the 18-digit form of %q", raw, id, norm)
			}
		} else if id.Value != norm {
			t.Fatalf("ParseSubjectID(%q) = %+v, normalised %q", raw, id, norm)
		}
		alphabet := identRefUSCCAlphabet
		if id.Kind == KindPerson {
			alphabet = "0123456789X"
		}
		for i := 0; i < len(id.Value); i++ {
			if !strings.ContainsRune(alphabet, rune(id.Value[i])) {
				t.Fatalf("ParseSubjectID(%q) = %+v: byte %#x outside %s", raw, id, id.Value[i], alphabet)
			}
		}
		switch id.Kind {
		case KindPerson:
			if perr != nil || pid != id {
				t.Fatalf("ParseSubjectID(%q) = %+v but ParseResidentID: %+v, %v", raw, id, pid, perr)
			}
		case KindOrganization:
			if oerr != nil || oid != id || perr == nil {
				t.Fatalf("ParseSubjectID(%q) = %+v but ParseUSCC: %+v, %v; ParseResidentID: %v", raw, id, oid, oerr, perr)
			}
		default:
			t.Fatalf("ParseSubjectID(%q) = %+v: unknown kind", raw, id)
		}
		again, err := ParseSubjectID(id.String())
		if err != nil || again != id {
			t.Fatalf("round trip of %+v: %+v, %v", id, again, err)
		}
		m := id.Masked()
		if len(m) != len(id.Value) {
			t.Fatalf("Masked(%+v) = %q", id, m)
		}
		if id.Kind == KindPerson && (m[:3] != id.Value[:3] || m[16:] != id.Value[16:] || strings.Trim(m[3:16], "*") != "") {
			t.Fatalf("Masked(%+v) = %q", id, m)
		}
		if id.Kind == KindOrganization && m != id.Value {
			t.Fatalf("Masked(%+v) = %q", id, m)
		}
	})
}
