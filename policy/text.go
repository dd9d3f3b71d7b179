package policy

import (
	"fmt"
	"unicode/utf8"
)

// ControlCharacter reports whether r is a control character text must not
// hold: U+0000–U+001F but for tab, line feed and carriage return. It is the
// one copy of the rule: strictjson (request bodies, import lines) applies
// it too, and policy applies it to every free text of an entry, decision,
// violation and partner, whichever way it came (JSON API, console,
// upstream snapshot).
//
// Why: U+0000 cannot be stored at all by PostgreSQL (neither text nor
// jsonb takes it), while SQLite stores it, so the same request succeeded
// on one deployment and failed on the other (and a record body holding it
// failed the group commit of every record beside it). The other C0
// characters are stored by both, but no free text of credgate (a reason,
// a name, a reference, a note) has a use for them, they are invisible in
// every console, CSV export and log an operator or auditor reads the
// record in (ESC starts terminal control sequences that rewrite what is
// shown), and XML 1.0, which many exchange formats of the credit system
// use, cannot carry them. Tab, line feed and carriage return are text:
// reasons and findings pasted from documents hold them.
func ControlCharacter(r rune) bool {
	return r < 0x20 && r != '\t' && r != '\n' && r != '\r'
}

// TextProblem describes why s is not text credgate stores (not UTF-8, or
// holding a ControlCharacter), without repeating the bad bytes; "" when it
// is.
func TextProblem(s string) string {
	if !utf8.ValidString(s) {
		for at := 0; at < len(s); {
			r, n := utf8.DecodeRuneInString(s[at:])
			if r == utf8.RuneError && n <= 1 {
				return fmt.Sprintf("is not valid UTF-8 (at byte %d)", at)
			}
			at += n
		}
	}
	for at := 0; at < len(s); at++ {
		if c := s[at]; c < 0x20 && ControlCharacter(rune(c)) {
			return fmt.Sprintf("holds the control character U+%04X at byte %d; text may hold tab, line feed and carriage return, no other control character", c, at)
		}
	}
	return ""
}
