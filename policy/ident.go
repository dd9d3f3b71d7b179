package policy

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// SubjectKind says what a subject identifier identifies.
type SubjectKind string

// The kinds of subject credgate checks.
const (
	KindOrganization SubjectKind = "organization" // 统一社会信用代码, GB 32100-2015
	KindPerson       SubjectKind = "person"       // 居民身份证号码, GB 11643-1999
)

// SubjectID is a validated, normalised identifier: an 18-character unified
// social credit code (USCC) for an organisation or an 18-character resident
// ID number for a person (a first-generation 15-digit number is converted
// to its 18-digit form). Obtain one from ParseSubjectID, ParseUSCC or
// ParseResidentID; the zero value means "no subject".
//
// Value is plain ASCII. It may share memory with the string it was parsed
// from when that string needed no normalisation.
type SubjectID struct {
	Kind  SubjectKind
	Value string
}

// String returns the normalised identifier. For a person it is personal
// data: log Masked instead.
func (s SubjectID) String() string { return s.Value }

// Masked returns the identifier for logs. Organisation codes are public
// data and returned unmasked. Anything else (persons, and a SubjectID of no
// known kind) keeps its first 3 and last 2 characters with every character
// between them replaced by '*', so the result is as long as the value:
// "11010519491231002X" becomes "110*************2X". A value of 5 characters
// or fewer is masked entirely.
// LogValue makes slog print the masked form, so personal ID numbers never
// reach the logs by accident.
func (s SubjectID) LogValue() slog.Value { return slog.StringValue(s.Masked()) }

func (s SubjectID) Masked() string {
	if s.Kind == KindOrganization {
		return s.Value
	}
	v := s.Value
	n := utf8.RuneCountInString(v)
	if n <= 5 {
		return strings.Repeat("*", n)
	}
	head := 0
	for range 3 {
		_, w := utf8.DecodeRuneInString(v[head:])
		head += w
	}
	tail := len(v)
	for range 2 {
		_, w := utf8.DecodeLastRuneInString(v[:tail])
		tail -= w
	}
	var b strings.Builder
	b.Grow(head + (n - 5) + (len(v) - tail))
	b.WriteString(v[:head])
	for range n - 5 {
		b.WriteByte('*')
	}
	b.WriteString(v[tail:])
	return b.String()
}

// IsZero reports whether s is the zero SubjectID.
func (s SubjectID) IsZero() bool { return s == SubjectID{} }

// Sentinel errors for subject identifiers. Every error returned by
// ParseSubjectID, ParseUSCC and ParseResidentID wraps exactly one of them
// (test with errors.Is) and adds detail: which rule, the offending character
// and its 1-based position. Details never repeat the identifier itself, nor
// the birth date of a resident ID, so errors are safe to log.
var (
	// ErrEmptyIdentifier: nothing is left after normalisation.
	ErrEmptyIdentifier = errors.New("empty subject identifier")
	// ErrIdentifierLength: not 18 characters after normalisation (nor 15
	// digits, the first-generation resident ID number, which is converted).
	ErrIdentifierLength = errors.New("subject identifier must be 18 characters")
	// ErrIdentifierCharset: a character outside the identifier's alphabet:
	// for a USCC the 31 characters 0-9 and A-Z without I, O, S, V, Z; for a
	// resident ID digits, with X allowed only as the last character. This
	// also covers the division code of a resident ID, which is the first 6
	// of its 17 digits.
	ErrIdentifierCharset = errors.New("subject identifier contains an invalid character")
	// ErrCheckCharacter: the 18th character is not the check character the
	// first 17 give (GB 32100 mod 31 for a USCC, GB 11643 mod 11 for a
	// resident ID). Any single substituted character, and any transposition
	// of two adjacent different characters among the first 17, ends here
	// unless a structural rule rejects it first.
	ErrCheckCharacter = errors.New("subject identifier check character mismatch")
	// ErrBirthDate: the birth date of a resident ID (positions 7-14,
	// YYYYMMDD; positions 7-12, YYMMDD of 19YY, in a 15-digit one) is not a
	// calendar date, or its year is outside 1800-2100.
	ErrBirthDate = errors.New("resident ID birth date is invalid")
	// ErrDivisionCode: the USCC's registration authority code (position 1)
	// is not one of 1-9, A, N, Y, or its registration division code
	// (positions 3-8) is not 6 digits.
	ErrDivisionCode = errors.New("invalid registration authority or division code")
)

// identLen is the length of both kinds of identifier.
const identLen = 18

// USCC rules, GB 32100-2015.
const (
	// identUSCCAlphabet lists the USCC characters in order of value.
	identUSCCAlphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
	// identUSCCAuthorities are the registration authority codes (登记管理部门
	// 代码) in use: 1 机构编制, 2 外交, 3 司法行政, 4 文化, 5 民政, 6 旅游,
	// 7 宗教, 8 工会, 9 工商 (市场监管), A 中央军委改革和编制办公室, N 农业,
	// Y 其他. GB 32100-2015 itself names 1, 5, 9 and Y; the others were
	// assigned to later registration authorities.
	identUSCCAuthorities = "123456789ANY"
	identNoValue         = 0xFF
)

// identUSCCWeights are 3^i mod 31 for i = 0..16.
var identUSCCWeights = [identLen - 1]int{1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28}

// identUSCCValue maps a byte to its value in identUSCCAlphabet, or
// identNoValue; identUSCCAuthority marks the registration authority codes.
var identUSCCValue, identUSCCAuthority = func() (v [256]uint8, a [256]bool) {
	for i := range v {
		v[i] = identNoValue
	}
	for i := 0; i < len(identUSCCAlphabet); i++ {
		v[identUSCCAlphabet[i]] = uint8(i)
	}
	for i := 0; i < len(identUSCCAuthorities); i++ {
		a[identUSCCAuthorities[i]] = true
	}
	return v, a
}()

// Resident ID rules, GB 11643-1999.
const (
	// identResidentChecks[sum mod 11] is the check character.
	identResidentChecks = "10X98765432"
	// identMinBirthYear admits persons born before 1900: GB 11643-1999's
	// own worked example, 440524188001010014, was born in 1880, and such
	// numbers stay in courts' and banks' records.
	identMinBirthYear = 1800
	identMaxBirthYear = 2100
	// identLegacyLen is the length of a first-generation resident ID
	// number (6-digit division, YYMMDD of 19YY, 3-digit sequence, no
	// check digit).
	identLegacyLen = 15
)

// identResidentWeights are 2^(17-i) mod 11 for i = 0..16.
var identResidentWeights = [identLen - 1]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// identRule names the first rule an identifier breaks.
type identRule uint8

const (
	identOK identRule = iota
	identRuleLength
	identRuleCharset
	identRuleAuthority
	identRuleDivision
	identRuleBirthYear
	identRuleBirthMonth
	identRuleBirthDay
	identRuleCheck
)

// identFault is a validation result. It is a plain value so that
// ParseSubjectID can try both kinds without allocating; it becomes an error
// (and allocates) only when one is returned.
type identFault struct {
	rule identRule
	pos  int  // 1-based character position of the offending character
	got  rune // the offending character
	want byte // the expected check character
	n    int  // the length in characters, for identRuleLength
}

// identKindLabel names the identifier type a fault was found in.
func identKindLabel(kind SubjectKind, legacy bool) string {
	switch {
	case legacy:
		return "15-digit resident ID number"
	case kind == KindPerson:
		return "resident ID number"
	}
	return "unified social credit code"
}

// sentinel returns the sentinel error of the fault's rule.
func (f identFault) sentinel() error {
	switch f.rule {
	case identRuleLength:
		return ErrIdentifierLength
	case identRuleCharset:
		return ErrIdentifierCharset
	case identRuleAuthority, identRuleDivision:
		return ErrDivisionCode
	case identRuleBirthYear, identRuleBirthMonth, identRuleBirthDay:
		return ErrBirthDate
	case identRuleCheck:
		return ErrCheckCharacter
	}
	return nil
}

// detail says which rule of the identifier type was broken, naming the
// type: "not a resident ID number: check digit is 3, want 4".
func (f identFault) detail(kind SubjectKind, legacy bool) string {
	label := identKindLabel(kind, legacy)
	allowed := "digits and capital letters other than I, O, S, V, Z"
	check := "check character"
	if kind == KindPerson {
		allowed, check = "digits, and X as the last character", "check digit"
		if legacy {
			allowed = "digits"
		}
	}
	switch f.rule {
	case identRuleLength:
		return fmt.Sprintf("got %d characters, want 18 (a unified social credit code or a resident ID number) or 15 digits (a first-generation resident ID number)", f.n)
	case identRuleCharset:
		return fmt.Sprintf("not a %s: %q at position %d (allowed: %s)", label, f.got, f.pos, allowed)
	case identRuleAuthority:
		return fmt.Sprintf("not a %s: %q at position 1 is not a registration authority code (%s)", label, f.got, identUSCCAuthorities)
	case identRuleDivision:
		return fmt.Sprintf("not a %s: division code (positions 3-8) must be digits, got %q at position %d", label, f.got, f.pos)
	case identRuleBirthYear:
		return fmt.Sprintf("not a %s: birth year is outside %d-%d", label, identMinBirthYear, identMaxBirthYear)
	case identRuleBirthMonth:
		return fmt.Sprintf("not a %s: birth month is outside 01-12", label)
	case identRuleBirthDay:
		return fmt.Sprintf("not a %s: birth day does not exist in its month", label)
	case identRuleCheck:
		return fmt.Sprintf("not a %s: %s is %c, want %c", label, check, f.got, f.want)
	}
	panic("policy: unknown identifier rule")
}

// err turns a fault found while trying one identifier type into an error
// wrapping the rule's sentinel.
func (f identFault) err(kind SubjectKind) error {
	if f.rule == identOK {
		return nil
	}
	return &identError{sentinel: f.sentinel(), msg: f.detail(kind, false)}
}

// identError is an identifier error: a precise message naming every
// identifier type tried and what failed in each, and one sentinel for
// errors.Is. Its message never repeats the identifier.
type identError struct {
	sentinel error
	msg      string
}

func (e *identError) Error() string { return e.sentinel.Error() + ": " + e.msg }
func (e *identError) Unwrap() error { return e.sentinel }

// identBothErr reports a string that was tried as both a resident ID
// number and a USCC and is neither. Its sentinel is the resident ID's
// when positions 7-14 look like a birth date (a mistyped ID number is
// reported as one), the USCC's otherwise; its message names both.
func identBothErr(s string, pf, of identFault) error {
	sentinel := of.sentinel()
	if identPlausibleBirthDate(s) {
		sentinel = pf.sentinel()
	}
	return &identError{sentinel: sentinel, msg: pf.detail(KindPerson, false) + "; " + of.detail(KindOrganization, false)}
}

// NormalizeIdentifier prepares raw input for parsing. It trims leading and
// trailing white space (Unicode White_Space: ASCII spaces and controls such
// as tab and newline, NBSP U+00A0, ideographic space U+3000, ...), removes
// ASCII spaces (U+0020) and ideographic spaces (U+3000) inside, maps
// full-width ASCII (U+FF01..U+FF5E) to ASCII and upper-cases ASCII letters.
// Nothing else is changed: hyphens and other inner white space stay (and
// make the identifier invalid), non-ASCII letters are not case-mapped, and
// invalid UTF-8 becomes U+FFFD. It is idempotent, and returns raw itself,
// without allocating, when there is nothing to change.
func NormalizeIdentifier(raw string) string {
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c >= utf8.RuneSelf || c <= ' ' || ('a' <= c && c <= 'z') {
			return identNormalizeSlow(raw)
		}
	}
	return raw
}

func identNormalizeSlow(raw string) string {
	s := strings.TrimFunc(raw, unicode.IsSpace)
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == ' ' || r == '\u3000':
			continue
		case r >= '\uFF01' && r <= '\uFF5E':
			r -= '\uFF01' - '!'
		}
		if 'a' <= r && r <= 'z' {
			r -= 'a' - 'A'
		}
		if r < utf8.RuneSelf {
			b.WriteByte(byte(r))
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// ParseUSCC parses a unified social credit code (统一社会信用代码, GB
// 32100-2015) after NormalizeIdentifier. Rules are checked in this order,
// and the first broken one is reported: not empty (ErrEmptyIdentifier), 18
// characters (ErrIdentifierLength), every character in the USCC alphabet
// (ErrIdentifierCharset), registration authority code and 6-digit division
// code (ErrDivisionCode), check character (ErrCheckCharacter). The
// organisation type code (position 2) is only required to be in the
// alphabet, as registration authorities keep adding types.
func ParseUSCC(raw string) (SubjectID, error) {
	s := NormalizeIdentifier(raw)
	if s == "" {
		return SubjectID{}, ErrEmptyIdentifier
	}
	if f := identCheckUSCC(s); f.rule != identOK {
		return SubjectID{}, f.err(KindOrganization)
	}
	return SubjectID{Kind: KindOrganization, Value: s}, nil
}

// ParseResidentID parses a resident ID number (居民身份证号码, GB
// 11643-1999) after NormalizeIdentifier, so a lower-case x check
// character is accepted. Rules are checked in this order, and the first
// broken one is reported: not empty (ErrEmptyIdentifier), 18 characters or
// 15 digits (ErrIdentifierLength), 17 digits then a digit or X
// (ErrIdentifierCharset), birth date a calendar date in 1800-2100
// (ErrBirthDate), check character (ErrCheckCharacter). The division code
// is only required to be digits: it is not looked up, since codes are
// retired and reissued over time and other documents (residence permits
// for Hong Kong, Macao and Taiwan residents, foreigners' permanent
// residence cards) share the format.
//
// A first-generation 15-digit number (6-digit division, YYMMDD, 3-digit
// sequence) is converted as GB 11643-1999 prescribes: the century 19 is
// inserted before the birth date and the check digit computed. The
// SubjectID holds the 18-digit form, so every record and answer uses it.
func ParseResidentID(raw string) (SubjectID, error) {
	s := NormalizeIdentifier(raw)
	if s == "" {
		return SubjectID{}, ErrEmptyIdentifier
	}
	if len(s) == identLegacyLen {
		return identParseLegacy(s)
	}
	if f := identCheckResident(s); f.rule != identOK {
		return SubjectID{}, f.err(KindPerson)
	}
	return SubjectID{Kind: KindPerson, Value: s}, nil
}

// identParseLegacy converts and validates a normalised 15-character
// first-generation resident ID number.
func identParseLegacy(s string) (SubjectID, error) {
	for i := 0; i < identLegacyLen; i++ {
		if s[i] < '0' || s[i] > '9' {
			f := identFault{rule: identRuleCharset, pos: i + 1, got: rune(s[i])}
			if s[i] >= utf8.RuneSelf {
				// 15 bytes holding a multi-byte character are fewer
				// than 15 characters.
				f = identFault{rule: identRuleLength, n: utf8.RuneCountInString(s)}
			}
			return SubjectID{}, &identError{sentinel: f.sentinel(), msg: f.detail(KindPerson, true)}
		}
	}
	var b [identLen]byte
	copy(b[:6], s[:6])
	b[6], b[7] = '1', '9'
	copy(b[8:17], s[6:])
	sum := 0
	for i := 0; i < identLen-1; i++ {
		sum += int(b[i]-'0') * identResidentWeights[i]
	}
	b[17] = identResidentChecks[sum%11]
	v := string(b[:])
	if f := identCheckBirthDate(v); f.rule != identOK {
		return SubjectID{}, &identError{sentinel: f.sentinel(), msg: f.detail(KindPerson, true)}
	}
	return SubjectID{Kind: KindPerson, Value: v}, nil
}

// identLegacyShaped reports whether s is 15 digits, the shape of a
// first-generation resident ID number.
func identLegacyShaped(s string) bool {
	if len(s) != identLegacyLen {
		return false
	}
	for i := 0; i < identLegacyLen; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ParseSubjectID parses an identifier of either kind after
// NormalizeIdentifier and decides the kind by content.
//
// A string of 17 digits followed by a digit or X is tried as a resident ID
// first: if it is one, the subject is a person. Otherwise it may still be a
// USCC, since USCCs can be all digits (914403001922038216 is one), and if it
// is one the subject is an organisation. A string valid as both (rare, but
// it exists: 911101198001010248) is therefore a person; a caller that
// knows the kind should use ParseUSCC or ParseResidentID. When such a string
// is neither, the error says what failed in each type ("not a resident ID
// number: check digit is 3, want 4; not a unified social credit code:
// check character is …"); it wraps the resident ID's sentinel if positions
// 7-14 look like a birth date (year 1800-2100, month 01-12, day 01-31), so
// a mistyped ID number is classified as one, and the USCC's otherwise.
// Fifteen digits are a first-generation resident ID number, converted to
// 18 digits (ParseResidentID). Any other string is parsed as a USCC.
// Length and emptiness errors do not depend on the kind.
//
// It allocates nothing when raw is already normalised, 18 characters long
// and valid.
func ParseSubjectID(raw string) (SubjectID, error) {
	s := NormalizeIdentifier(raw)
	if s == "" {
		return SubjectID{}, ErrEmptyIdentifier
	}
	if identLegacyShaped(s) {
		return identParseLegacy(s)
	}
	if !identResidentShaped(s) {
		if f := identCheckUSCC(s); f.rule != identOK {
			return SubjectID{}, f.err(KindOrganization)
		}
		return SubjectID{Kind: KindOrganization, Value: s}, nil
	}
	pf := identCheckResident(s)
	if pf.rule == identOK {
		return SubjectID{Kind: KindPerson, Value: s}, nil
	}
	of := identCheckUSCC(s)
	if of.rule == identOK {
		return SubjectID{Kind: KindOrganization, Value: s}, nil
	}
	return SubjectID{}, identBothErr(s, pf, of)
}

// identResidentShaped reports whether s is 17 digits followed by a digit or
// X.
func identResidentShaped(s string) bool {
	if len(s) != identLen {
		return false
	}
	for i := 0; i < identLen-1; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	last := s[identLen-1]
	return ('0' <= last && last <= '9') || last == 'X'
}

// identShapeFault explains why s, which is not 18 ASCII bytes or contains a
// non-ASCII byte, is invalid: its length in characters when that is not 18,
// else its first non-ASCII character.
func identShapeFault(s string) identFault {
	n := utf8.RuneCountInString(s)
	if n != identLen {
		return identFault{rule: identRuleLength, n: n}
	}
	pos := 0
	for _, r := range s {
		pos++
		if r >= utf8.RuneSelf {
			return identFault{rule: identRuleCharset, pos: pos, got: r}
		}
	}
	// Not reached: 18 ASCII characters are 18 bytes.
	return identFault{rule: identRuleLength, n: n}
}

// identCharFault reports the character at byte i, which the kind's alphabet
// does not allow; all bytes before it are ASCII.
func identCharFault(s string, i int) identFault {
	if s[i] >= utf8.RuneSelf {
		return identShapeFault(s)
	}
	return identFault{rule: identRuleCharset, pos: i + 1, got: rune(s[i])}
}

// identCheckUSCC validates a normalised, non-empty USCC. The alphabet is
// checked over the whole string before the structural rules, which come
// before the check character.
func identCheckUSCC(s string) identFault {
	if len(s) != identLen {
		return identShapeFault(s)
	}
	var structural identFault
	sum := 0
	for i := 0; i < identLen; i++ {
		c := s[i]
		v := identUSCCValue[c]
		if v == identNoValue {
			return identCharFault(s, i)
		}
		if structural.rule == identOK {
			if i == 0 && !identUSCCAuthority[c] {
				structural = identFault{rule: identRuleAuthority, pos: 1, got: rune(c)}
			} else if i >= 2 && i < 8 && v > 9 {
				structural = identFault{rule: identRuleDivision, pos: i + 1, got: rune(c)}
			}
		}
		if i < identLen-1 {
			sum += int(v) * identUSCCWeights[i]
		}
	}
	if structural.rule != identOK {
		return structural
	}
	want := identUSCCAlphabet[(31-sum%31)%31]
	if got := s[identLen-1]; got != want {
		return identFault{rule: identRuleCheck, pos: identLen, got: rune(got), want: want}
	}
	return identFault{}
}

// identCheckResident validates a normalised, non-empty resident ID.
func identCheckResident(s string) identFault {
	if len(s) != identLen {
		return identShapeFault(s)
	}
	sum := 0
	for i := 0; i < identLen-1; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return identCharFault(s, i)
		}
		sum += int(c-'0') * identResidentWeights[i]
	}
	last := s[identLen-1]
	if (last < '0' || last > '9') && last != 'X' {
		return identCharFault(s, identLen-1)
	}
	if f := identCheckBirthDate(s); f.rule != identOK {
		return f
	}
	if want := identResidentChecks[sum%11]; last != want {
		return identFault{rule: identRuleCheck, pos: identLen, got: rune(last), want: want}
	}
	return identFault{}
}

// identBirthDate reads positions 7-14 (YYYYMMDD) of a string whose first
// 17 characters are digits.
func identBirthDate(s string) (year, month, day int) {
	d := func(i int) int { return int(s[i] - '0') }
	year = d(6)*1000 + d(7)*100 + d(8)*10 + d(9)
	month = d(10)*10 + d(11)
	day = d(12)*10 + d(13)
	return year, month, day
}

// identCheckBirthDate checks the birth date of a resident ID: a year in
// 1800-2100 (no clock is read, so this is the "not in the future" rule) and
// a real calendar date, by round trip through time.Date.
func identCheckBirthDate(s string) identFault {
	year, month, day := identBirthDate(s)
	if year < identMinBirthYear || year > identMaxBirthYear {
		return identFault{rule: identRuleBirthYear}
	}
	if month < 1 || month > 12 {
		return identFault{rule: identRuleBirthMonth}
	}
	t := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
	if t.Year() != year || int(t.Month()) != month || t.Day() != day {
		return identFault{rule: identRuleBirthDay}
	}
	return identFault{}
}

// identPlausibleBirthDate reports whether positions 7-14 of a
// resident-shaped string look like a birth date someone meant to type,
// without requiring the day to exist in its month.
func identPlausibleBirthDate(s string) bool {
	year, month, day := identBirthDate(s)
	return year >= identMinBirthYear && year <= identMaxBirthYear &&
		month >= 1 && month <= 12 && day >= 1 && day <= 31
}
