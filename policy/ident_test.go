package policy

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// The tests check the production code against reference implementations
// written here from the standards' definitions rather than from the
// production tables: the check character is the one value that makes the
// full weighted sum come out right, with weights computed as powers.

// identRefUSCCAlphabet is GB 32100's character set in value order.
const identRefUSCCAlphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"

// identRefUSCCCheck returns the GB 32100 check character for a 17-character
// body: the character of value c such that sum(v_i * 3^i) + c ≡ 0 (mod 31).
func identRefUSCCCheck(body string) byte {
	if len(body) != 17 {
		panic("identRefUSCCCheck: body must be 17 characters")
	}
	sum, w := 0, 1
	for i := 0; i < 17; i++ {
		v := strings.IndexByte(identRefUSCCAlphabet, body[i])
		if v < 0 {
			panic("identRefUSCCCheck: character outside the alphabet")
		}
		sum += v * w
		w = w * 3 % 31
	}
	for c := 0; c < 31; c++ {
		if (sum+c)%31 == 0 {
			return identRefUSCCAlphabet[c]
		}
	}
	panic("unreachable")
}

// identRefResidentCheck returns the GB 11643 check character for 17 digits:
// the value a18 (X for 10) such that sum(a_i * 2^(18-i)) over i = 1..18,
// with weight 1 for a18, is ≡ 1 (mod 11).
func identRefResidentCheck(body string) byte {
	if len(body) != 17 {
		panic("identRefResidentCheck: body must be 17 digits")
	}
	sum := 0
	for i := 0; i < 17; i++ {
		sum += int(body[i]-'0') * ((1 << (17 - i)) % 11)
	}
	for a := 0; a <= 10; a++ {
		if (sum+a)%11 == 1 {
			if a == 10 {
				return 'X'
			}
			return byte('0' + a)
		}
	}
	panic("unreachable")
}

func identRefUSCC(body string) string     { return body + string(identRefUSCCCheck(body)) }
func identRefResident(body string) string { return body + string(identRefResidentCheck(body)) }

func identRefLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

func identRefDaysIn(y, m int) int {
	switch m {
	case 2:
		if identRefLeap(y) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// identRefValidDate reports whether an 8-digit YYYYMMDD string is a date
// ParseResidentID accepts.
func identRefValidDate(d string) bool {
	n := func(s string) int {
		v := 0
		for i := 0; i < len(s); i++ {
			v = v*10 + int(s[i]-'0')
		}
		return v
	}
	y, m, day := n(d[0:4]), n(d[4:6]), n(d[6:8])
	return y >= 1800 && y <= 2100 && m >= 1 && m <= 12 && day >= 1 && day <= identRefDaysIn(y, m)
}

// identRealUSCCs are published codes of real organisations (public
// registration data). Only the check character was verified here, by
// identRefUSCCCheck; the attributions are as widely published and were not
// checked against the national enterprise credit information system.
var identRealUSCCs = []struct{ code, source string }{
	{"91350100M000100Y43", "worked example accompanying GB 32100-2015 (Fuzhou, Fujian)"},
	{"914403001922038216", "华为技术有限公司; all digits"},
	{"9144030071526726XG", "腾讯科技（深圳）有限公司; X inside the organisation code"},
	{"91110108551385082Q", "小米科技有限责任公司"},
	{"91100000100003962T", "中国工商银行股份有限公司; national-level division code 100000"},
	{"911000001000013428", "中国银行股份有限公司; all digits"},
	{"91310000631295002H", "上海浦东发展银行股份有限公司"},
}

// identGB11643Example is the example number in GB 11643-1999.
const identGB11643Example = "11010519491231002X"

// identGB11643Example1880 is GB 11643-1999's worked example of the check
// digit computation: a person born on 1 January 1880.
const identGB11643Example1880 = "440524188001010014"

// identLegacyExample is identGB11643Example in its first-generation
// 15-digit form (no century, no check digit).
const identLegacyExample = "110105491231002"

// identAmbiguous is synthetic: valid both as a USCC (authority 9, type 1,
// division 110119 Yanqing, Beijing) and as a resident ID (born 1980-01-01).
const identAmbiguous = "911101198001010248"

func TestIdentReferenceImplementations(t *testing.T) {
	// The references must agree with the examples the standards publish.
	if got := identRefUSCC("91350100M000100Y4"); got != "91350100M000100Y43" {
		t.Fatalf("reference USCC check: got %s", got)
	}
	if got := identRefResident(identGB11643Example[:17]); got != identGB11643Example {
		t.Fatalf("reference resident check: got %s", got)
	}
	if got := identRefResident(identGB11643Example1880[:17]); got != identGB11643Example1880 {
		t.Fatalf("reference resident check of the 1880 example: got %s", got)
	}
	for _, c := range identRealUSCCs {
		if got := identRefUSCC(c.code[:17]); got != c.code {
			t.Errorf("%s (%s): reference computes %s", c.code, c.source, got)
		}
	}
	if identRefUSCC(identAmbiguous[:17]) != identAmbiguous || identRefResident(identAmbiguous[:17]) != identAmbiguous {
		t.Fatalf("%s is not valid as both kinds", identAmbiguous)
	}
	// Numbers sometimes quoted as real USCCs that do not validate.
	for _, bad := range []string{"91110000100003962T", "911100001000000000"} {
		if identRefUSCC(bad[:17]) == bad {
			t.Errorf("%s unexpectedly validates", bad)
		}
	}
}

func TestNormalizeIdentifier(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"already normal", "91350100M000100Y43", "91350100M000100Y43"},
		{"empty", "", ""},
		{"only spaces", " \t\r\n\u3000\u00a0", ""},
		{"lower case", "91350100m000100y43", "91350100M000100Y43"},
		{"lower x", "11010519491231002x", "11010519491231002X"},
		{"surrounding ascii space", "  91350100M000100Y43\t\n", "91350100M000100Y43"},
		{"surrounding ideographic space", "\u300091350100M000100Y43\u3000", "91350100M000100Y43"},
		{"surrounding nbsp", "\u00a091350100M000100Y43\u00a0", "91350100M000100Y43"},
		{"inner spaces", "9135 0100 M000 100Y 43", "91350100M000100Y43"},
		{"inner ideographic space", "913501\u300000M000100Y43", "91350100M000100Y43"},
		{"full-width", "９１３５０１００Ｍ０００１００Ｙ４３", "91350100M000100Y43"},
		{"full-width lower", "１１０１０５１９４９１２３１００２ｘ", "11010519491231002X"},
		{"full-width and spaces", "\u3000９１３５０１００\u3000ｍ０００１００ｙ４３ ", "91350100M000100Y43"},
		{"hyphen kept", "913501-00M000100Y43", "913501-00M000100Y43"},
		{"full-width hyphen mapped", "913501－00M000100Y43", "913501-00M000100Y43"},
		{"inner nbsp kept", "913501\u00a000", "913501\u00a000"},
		{"inner tab kept", "913501\t00", "913501\t00"},
		{"non-ascii letters not case-mapped", "ſıé", "ſıé"},
		{"invalid utf-8", "91\xff", "91\uFFFD"},
		{"ascii punctuation", "a!~", "A!~"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NormalizeIdentifier(tt.in)
			if got != tt.want {
				t.Fatalf("NormalizeIdentifier(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if again := NormalizeIdentifier(got); again != got {
				t.Fatalf("not idempotent: %q -> %q", got, again)
			}
		})
	}
}

func TestNormalizeIdentifierNoAllocWhenNormal(t *testing.T) {
	for _, s := range []string{"91350100M000100Y43", identGB11643Example, "", "ANY-ASCII_WITHOUT_SPACE"} {
		if n := testing.AllocsPerRun(100, func() { _ = NormalizeIdentifier(s) }); n != 0 {
			t.Errorf("NormalizeIdentifier(%q): %v allocations, want 0", s, n)
		}
	}
}

// identAllSentinels are the errors an identifier parser may wrap.
var identAllSentinels = []error{ErrEmptyIdentifier, ErrIdentifierLength, ErrIdentifierCharset, ErrCheckCharacter, ErrBirthDate, ErrDivisionCode}

// identSentinelsIn returns the sentinels err wraps.
func identSentinelsIn(err error) []error {
	var found []error
	for _, s := range identAllSentinels {
		if errors.Is(err, s) {
			found = append(found, s)
		}
	}
	return found
}

type identCase struct {
	name string
	in   string
	want error // nil: valid
	norm string
}

func identRunCases(t *testing.T, parse func(string) (SubjectID, error), kind SubjectKind, cases []identCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			id, err := parse(tt.in)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("parse(%q): unexpected error %v", tt.in, err)
				}
				want := tt.norm
				if want == "" {
					want = tt.in
				}
				if id != (SubjectID{Kind: kind, Value: want}) {
					t.Fatalf("parse(%q) = %+v, want %s %q", tt.in, id, kind, want)
				}
				return
			}
			if err == nil {
				t.Fatalf("parse(%q) = %+v, want error %v", tt.in, id, tt.want)
			}
			if !id.IsZero() {
				t.Errorf("parse(%q) returned %+v with its error", tt.in, id)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("parse(%q) error %q, want errors.Is %q", tt.in, err, tt.want)
			}
			if s := identSentinelsIn(err); len(s) != 1 {
				t.Errorf("parse(%q) error %q wraps %d sentinels, want 1", tt.in, err, len(s))
			}
		})
	}
}

func TestParseUSCC(t *testing.T) {
	var cases []identCase
	for _, c := range identRealUSCCs {
		cases = append(cases, identCase{name: "real " + c.code, in: c.code})
	}
	const fj = "91350100M000100Y43"
	cases = append(cases, []identCase{
		{name: "lower case", in: "91350100m000100y43", norm: fj},
		{name: "full-width", in: "９１３５０１００Ｍ０００１００Ｙ４３", norm: fj},
		{name: "spaces", in: "\u3000 9135 0100 M000 100Y 43\u00a0", norm: fj},
		{name: "authority A", in: identRefUSCC("A1350100M000100Y4")},
		{name: "authority N", in: identRefUSCC("N2350100M000100Y4")},
		{name: "authority 3 (law firm)", in: identRefUSCC("31110000E00000000")},
		{name: "organisation type letter", in: identRefUSCC("9Y350100M000100Y4")},

		{name: "empty", in: "", want: ErrEmptyIdentifier},
		{name: "blank", in: " \u3000\t", want: ErrEmptyIdentifier},
		{name: "wrong check character", in: "91350100M000100Y44", want: ErrCheckCharacter},
		{name: "transposed adjacent", in: "913501000M00100Y43", want: ErrCheckCharacter},
		{name: "transposed last body pair", in: "91350100M0001004Y3", want: ErrCheckCharacter},
		{name: "one character changed", in: "91350100M000101Y43", want: ErrCheckCharacter},
		{name: "letter O for 0", in: "91350100MO00100Y43", want: ErrIdentifierCharset},
		{name: "letter O in division", in: "9135O100M000100Y43", want: ErrIdentifierCharset},
		{name: "letter I", in: "91350100MI00100Y43", want: ErrIdentifierCharset},
		{name: "letter S", in: "91350100MS00100Y43", want: ErrIdentifierCharset},
		{name: "letter V", in: "91350100MV00100Y43", want: ErrIdentifierCharset},
		{name: "letter Z", in: "91350100MZ00100Y43", want: ErrIdentifierCharset},
		{name: "17 characters", in: "91350100M000100Y4", want: ErrIdentifierLength},
		{name: "19 characters", in: "91350100M000100Y433", want: ErrIdentifierLength},
		{name: "15-digit registration number", in: "110108012660422", want: ErrIdentifierLength},
		{name: "embedded hyphen", in: "91350100-M000100Y43", want: ErrIdentifierLength},
		{name: "hyphen in place of a character", in: "91350100M-00100Y43", want: ErrIdentifierCharset},
		{name: "inner nbsp", in: "91350100M\u00a0000100Y4", want: ErrIdentifierCharset},
		{name: "chinese character", in: "91350100M000100Y4三", want: ErrIdentifierCharset},
		{name: "chinese text", in: "统一社会信用代码", want: ErrIdentifierLength},
		{name: "invalid utf-8", in: "91350100M000100Y4\xff", want: ErrIdentifierCharset},
		{name: "authority 0", in: identRefUSCC("01350100M000100Y4"), want: ErrDivisionCode},
		{name: "authority B", in: identRefUSCC("B1350100M000100Y4"), want: ErrDivisionCode},
		{name: "authority Y valid but X not", in: identRefUSCC("X1350100M000100Y4"), want: ErrDivisionCode},
		{name: "letter in division", in: identRefUSCC("91A50100M000100Y4"), want: ErrDivisionCode},
		{name: "letter at end of division", in: identRefUSCC("9135010MM000100Y4"), want: ErrDivisionCode},
		{name: "charset before structure", in: "B135010MM0O0100Y43", want: ErrIdentifierCharset},
		{name: "structure before check", in: "B1350100M000100Y40", want: ErrDivisionCode},
		{name: "resident ID is not a USCC", in: identGB11643Example, want: ErrCheckCharacter},
	}...)
	identRunCases(t, ParseUSCC, KindOrganization, cases)
}

func TestParseResidentID(t *testing.T) {
	cases := []identCase{
		{name: "GB 11643 example", in: identGB11643Example},
		{name: "lower x", in: "11010519491231002x", norm: identGB11643Example},
		{name: "full-width", in: "１１０１０５１９４９１２３１００２Ｘ", norm: identGB11643Example},
		{name: "spaces", in: " 110105 19491231 002X\u3000", norm: identGB11643Example},
		{name: "leap day 2000", in: identRefResident("11010520000229001")},
		{name: "leap day 2024", in: identRefResident("44030020240229123")},
		{name: "GB 11643 worked example, born 1880", in: identGB11643Example1880},
		{name: "born 1899", in: identRefResident("11010518991231001")},
		{name: "first accepted day", in: identRefResident("11010518000101001")},
		{name: "15-digit first generation", in: identLegacyExample, norm: identGB11643Example},
		{name: "15-digit with spaces", in: " 110105 491231 002 ", norm: identGB11643Example},
		{name: "15-digit full-width", in: "１１０１０５４９１２３１００２", norm: identGB11643Example},
		{name: "15-digit converted check digit X", in: "110105491231001", norm: identRefResident("11010519491231001")},
		{name: "last accepted day", in: identRefResident("11010521001231001")},
		{name: "division starting with 0 is not looked up", in: identRefResident("00000019800101001")},

		{name: "empty", in: "", want: ErrEmptyIdentifier},
		{name: "wrong check character", in: "110105194912310021", want: ErrCheckCharacter},
		{name: "X where a digit is due", in: identRefResident("11010519491231001")[:17] + "X", want: ErrCheckCharacter},
		{name: "transposed adjacent", in: "11010591491231002X", want: ErrBirthDate},
		{name: "transposed sequence digits", in: "11010519491231020X", want: ErrCheckCharacter},
		{name: "15-digit with month 13", in: "110105491331002", want: ErrBirthDate},
		{name: "15-digit with february 29 1949", in: "110105490229002", want: ErrBirthDate},
		{name: "15-digit with X", in: "11010549123100X", want: ErrIdentifierCharset},
		{name: "15 characters with a chinese character", in: "1101054912310三", want: ErrIdentifierLength},
		{name: "14 digits", in: "11010549123100", want: ErrIdentifierLength},
		{name: "16 digits", in: "1101054912310020", want: ErrIdentifierLength},
		{name: "17 characters", in: "11010519491231002", want: ErrIdentifierLength},
		{name: "19 characters", in: "11010519491231002X0", want: ErrIdentifierLength},
		{name: "X inside", in: "1101051949123100X2", want: ErrIdentifierCharset},
		{name: "letter", in: "1101051949A231002X", want: ErrIdentifierCharset},
		{name: "letter as check", in: "11010519491231002Y", want: ErrIdentifierCharset},
		{name: "hyphen", in: "110105-19491231002X", want: ErrIdentifierLength},
		{name: "hyphen in place of a digit", in: "110105-9491231002X", want: ErrIdentifierCharset},
		{name: "year 1799", in: identRefResident("11010517991231001"), want: ErrBirthDate},
		{name: "year 2101", in: identRefResident("11010521010101001"), want: ErrBirthDate},
		{name: "year 0000", in: identRefResident("11010500000101001"), want: ErrBirthDate},
		{name: "month 00", in: identRefResident("11010519490001001"), want: ErrBirthDate},
		{name: "month 13", in: identRefResident("11010519491301001"), want: ErrBirthDate},
		{name: "day 00", in: identRefResident("11010519491200001"), want: ErrBirthDate},
		{name: "day 32", in: identRefResident("11010519491232001"), want: ErrBirthDate},
		{name: "april 31", in: identRefResident("11010519490431001"), want: ErrBirthDate},
		{name: "february 29 1900 (not leap)", in: identRefResident("11010519000229001"), want: ErrBirthDate},
		{name: "february 29 2100 (not leap)", in: identRefResident("11010521000229001"), want: ErrBirthDate},
		{name: "february 29 2023", in: identRefResident("11010520230229001"), want: ErrBirthDate},
		{name: "february 30 2000", in: identRefResident("11010520000230001"), want: ErrBirthDate},
		{name: "a USCC is not a resident ID", in: "91350100M000100Y43", want: ErrIdentifierCharset},
		{name: "an all-digit USCC is not a resident ID", in: "914403001922038216", want: ErrBirthDate},
	}
	identRunCases(t, ParseResidentID, KindPerson, cases)
}

func TestParseSubjectID(t *testing.T) {
	person := func(name, in, norm string) identCase { return identCase{name: name, in: in, norm: norm} }
	cases := []struct {
		identCase
		kind  SubjectKind
		label string // the kind named in the error message
	}{
		{person("GB 11643 example", identGB11643Example, ""), KindPerson, ""},
		{person("lower x", "11010519491231002x", identGB11643Example), KindPerson, ""},
		{person("full-width person", "１１０１０５１９４９１２３１００２ｘ", identGB11643Example), KindPerson, ""},
		{person("ambiguous is a person", identAmbiguous, ""), KindPerson, ""},
		{person("USCC", "91350100M000100Y43", ""), KindOrganization, ""},
		{person("lower-case USCC", "91350100m000100y43", "91350100M000100Y43"), KindOrganization, ""},
		{person("all-digit USCC", "914403001922038216", ""), KindOrganization, ""},
		{person("all-digit USCC 2", "911000001000013428", ""), KindOrganization, ""},
		{person("GB 11643 example born 1880", identGB11643Example1880, ""), KindPerson, ""},
		{person("15 digits converted", identLegacyExample, identGB11643Example), KindPerson, ""},

		{identCase{name: "empty", in: "\u3000", want: ErrEmptyIdentifier}, "", ""},
		{identCase{name: "15 digits, bad date", in: "110105491331002", want: ErrBirthDate}, "", "not a 15-digit resident ID number: birth month"},
		{identCase{name: "15 characters, not digits", in: "11010549123100A", want: ErrIdentifierLength}, "", "want 18"},
		{identCase{name: "16 digits", in: "1101054912310020", want: ErrIdentifierLength}, "", "got 16 characters"},
		{identCase{name: "ID with wrong check", in: "110105194912310021", want: ErrCheckCharacter}, "", "not a resident ID number: check digit is 1, want X; not a unified social credit code: check character is 1, want "},
		{identCase{name: "1880 example with wrong check", in: "440524188001010015", want: ErrCheckCharacter}, "", "not a resident ID number: check digit is 5, want 4; not a unified social credit code: "},
		{identCase{name: "ID with february 30", in: identRefResident("11010519490230001"), want: ErrBirthDate}, "", "resident ID"},
		{identCase{name: "ID with april 31", in: "110105194904310018", want: ErrBirthDate}, "", "resident ID"},
		{identCase{name: "all-digit USCC with wrong check", in: "911000001000013429", want: ErrCheckCharacter}, "", "unified social credit code"},
		{identCase{name: "ID-shaped, implausible date, authority 0", in: "000000000000000000", want: ErrDivisionCode}, "", "not a resident ID number: birth year is outside 1800-2100; not a unified social credit code: '0' at position 1 is not a registration authority code"},
		{identCase{name: "ID-shaped, month 13", in: identRefResident("11010519491301001"), want: ErrCheckCharacter}, "", "unified social credit code"},
		{identCase{name: "USCC with O", in: "91350100MO00100Y43", want: ErrIdentifierCharset}, "", "unified social credit code"},
		{identCase{name: "USCC with hyphen", in: "91350100M-00100Y43", want: ErrIdentifierCharset}, "", "unified social credit code"},
		{identCase{name: "garbage", in: "<script>alert(1)</script>", want: ErrIdentifierLength}, "", ""},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			id, err := ParseSubjectID(tt.in)
			if tt.want == nil {
				want := tt.norm
				if want == "" {
					want = tt.in
				}
				if err != nil || id != (SubjectID{Kind: tt.kind, Value: want}) {
					t.Fatalf("ParseSubjectID(%q) = %+v, %v; want %s %q", tt.in, id, err, tt.kind, want)
				}
				return
			}
			if err == nil || !errors.Is(err, tt.want) || !id.IsZero() {
				t.Fatalf("ParseSubjectID(%q) = %+v, %v; want errors.Is %v", tt.in, id, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.label) {
				t.Errorf("ParseSubjectID(%q) error %q does not name %q", tt.in, err, tt.label)
			}
		})
	}
}

func TestParseSubjectIDAmbiguousAgreesWithSpecificParsers(t *testing.T) {
	if _, err := ParseUSCC(identAmbiguous); err != nil {
		t.Fatalf("ParseUSCC(%s): %v", identAmbiguous, err)
	}
	if _, err := ParseResidentID(identAmbiguous); err != nil {
		t.Fatalf("ParseResidentID(%s): %v", identAmbiguous, err)
	}
}

func TestIdentErrorsDoNotLeakIdentifier(t *testing.T) {
	// Invalid person numbers in error messages would put personal data in
	// logs; the birth date and body digits must not appear.
	for _, in := range []string{
		"110105194912310021",
		identRefResident("11010519490230001"),
		"1101051949A231002X",
		"11010519491231002Y",
	} {
		for _, parse := range []func(string) (SubjectID, error){ParseSubjectID, ParseResidentID, ParseUSCC} {
			_, err := parse(in)
			if err == nil {
				t.Fatalf("%q parsed", in)
			}
			if msg := err.Error(); strings.Contains(msg, "1949") || strings.Contains(msg, "110105") {
				t.Errorf("error for %q leaks it: %q", in, msg)
			}
		}
	}
}

func TestIdentErrorDetail(t *testing.T) {
	_, err := ParseUSCC("91350100M000100Y44")
	if want := "not a unified social credit code: check character is 4, want 3"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("ParseUSCC error %v, want it to contain %q", err, want)
	}
	_, err = ParseUSCC("91350100MO00100Y43")
	if want := "'O' at position 10"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("ParseUSCC error %v, want it to contain %q", err, want)
	}
	_, err = ParseUSCC("91350100M000100Y4三")
	if want := "'三' at position 18"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("ParseUSCC error %v, want it to contain %q", err, want)
	}
	_, err = ParseSubjectID("1101054912310")
	if want := "got 13 characters"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("ParseSubjectID error %v, want it to contain %q", err, want)
	}
}

func TestSubjectIDMethods(t *testing.T) {
	p, err := ParseSubjectID(identGB11643Example)
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseSubjectID("91350100m000100y43")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id          SubjectID
		str, masked string
		zero        bool
	}{
		{p, identGB11643Example, "110*************2X", false},
		{o, "91350100M000100Y43", "91350100M000100Y43", false},
		{SubjectID{}, "", "", true},
		{SubjectID{Kind: KindPerson}, "", "", false},
		{SubjectID{Value: "110105194912310021"}, "110105194912310021", "110*************21", false},
		{SubjectID{Kind: KindPerson, Value: "12345"}, "12345", "*****", false},
		{SubjectID{Kind: KindPerson, Value: "123456"}, "123456", "123*56", false},
		{SubjectID{Kind: KindPerson, Value: "身份证号码测试"}, "身份证号码测试", "身份证**测试", false},
	}
	for _, tt := range tests {
		if got := tt.id.String(); got != tt.str {
			t.Errorf("%+v.String() = %q, want %q", tt.id, got, tt.str)
		}
		if got := tt.id.Masked(); got != tt.masked {
			t.Errorf("%+v.Masked() = %q, want %q", tt.id, got, tt.masked)
		}
		if got := tt.id.IsZero(); got != tt.zero {
			t.Errorf("%+v.IsZero() = %v, want %v", tt.id, got, tt.zero)
		}
	}
	if len(p.Masked()) != len(p.Value) {
		t.Errorf("masked person %q is not as long as the value", p.Masked())
	}
}

func TestParseSubjectIDNoAllocWhenNormal(t *testing.T) {
	for _, s := range []string{identGB11643Example, identGB11643Example1880, "91350100M000100Y43", "914403001922038216", identAmbiguous} {
		if n := testing.AllocsPerRun(100, func() { _, _ = ParseSubjectID(s) }); n != 0 {
			t.Errorf("ParseSubjectID(%q): %v allocations, want 0", s, n)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = ParseSubjectID("91350100m000100y43") }); n > 1 {
		t.Errorf("ParseSubjectID of lower case: %v allocations, want at most 1", n)
	}
}

// identGenUSCC returns a random valid USCC.
func identGenUSCC(rng *rand.Rand) string {
	const authorities = "123456789ANY"
	var b [17]byte
	b[0] = authorities[rng.IntN(len(authorities))]
	b[1] = identRefUSCCAlphabet[rng.IntN(31)]
	for i := 2; i < 8; i++ {
		b[i] = byte('0' + rng.IntN(10))
	}
	for i := 8; i < 17; i++ {
		if rng.IntN(2) == 0 { // half digits, so all-digit codes occur too
			b[i] = byte('0' + rng.IntN(10))
		} else {
			b[i] = identRefUSCCAlphabet[rng.IntN(31)]
		}
	}
	return identRefUSCC(string(b[:]))
}

// identGenResident returns a random valid resident ID.
func identGenResident(rng *rand.Rand) string {
	var b strings.Builder
	for range 6 {
		b.WriteByte(byte('0' + rng.IntN(10)))
	}
	y := 1800 + rng.IntN(301)
	m := 1 + rng.IntN(12)
	d := 1 + rng.IntN(identRefDaysIn(y, m))
	for _, v := range []int{y / 1000, y / 100 % 10, y / 10 % 10, y % 10, m / 10, m % 10, d / 10, d % 10} {
		b.WriteByte(byte('0' + v))
	}
	for range 3 {
		b.WriteByte(byte('0' + rng.IntN(10)))
	}
	return identRefResident(b.String())
}

func identReplace(s string, i int, c byte) string {
	b := []byte(s)
	b[i] = c
	return string(b)
}

func identSwap(s string, i int) string {
	b := []byte(s)
	b[i], b[i+1] = b[i+1], b[i]
	return string(b)
}

// TestIdentSubstitutionProperty: for random valid-by-construction codes,
// parsing succeeds, and every single-character substitution within the
// alphabet fails. Both check schemes catch all of them: a change at
// position i moves the weighted sum by w_i*(new-old), and w_i is a power of
// 3 (of 2) modulo the prime 31 (11) while |new-old| is below the modulus, so
// the product is never 0 mod 31 (11); a changed check character is simply
// different. The same argument covers swapping two adjacent different
// characters among the first 17 (the sum moves by (a-b)*(w_i - w_{i+1}),
// and w_{i+1} = 3*w_i resp. w_i = 2*w_{i+1}). The error must be
// ErrCheckCharacter unless the substitution breaks a structural rule first.
func TestIdentSubstitutionProperty(t *testing.T) {
	n, exhaustive := 10000, 300
	if testing.Short() {
		n, exhaustive = 1000, 50
	}
	rng := rand.New(rand.NewPCG(20151001, 19990801))
	const residentAlphabet = "0123456789X"

	for k := range n {
		code := identGenUSCC(rng)
		id, err := ParseUSCC(code)
		if err != nil || id != (SubjectID{Kind: KindOrganization, Value: code}) {
			t.Fatalf("ParseUSCC(%s) = %+v, %v", code, id, err)
		}
		sid, err := ParseSubjectID(code)
		wantKind := KindOrganization
		if _, perr := ParseResidentID(code); perr == nil {
			wantKind = KindPerson
		}
		if err != nil || sid.Kind != wantKind || sid.Value != code {
			t.Fatalf("ParseSubjectID(%s) = %+v, %v; want %s", code, sid, err, wantKind)
		}
		for pos := range identLen {
			alts := identRefUSCCAlphabet
			if k >= exhaustive {
				alts = string(identRefUSCCAlphabet[rng.IntN(31)])
			}
			for a := 0; a < len(alts); a++ {
				c := alts[a]
				if c == code[pos] {
					continue
				}
				mutated := identReplace(code, pos, c)
				_, err := ParseUSCC(mutated)
				want := ErrCheckCharacter
				switch {
				case pos == 0 && !strings.ContainsRune("123456789ANY", rune(c)):
					want = ErrDivisionCode
				case pos >= 2 && pos < 8 && (c < '0' || c > '9'):
					want = ErrDivisionCode
				}
				if !errors.Is(err, want) {
					t.Fatalf("ParseUSCC(%s), %s with position %d changed: %v, want %v", mutated, code, pos+1, err, want)
				}
			}
		}
		for i := range identLen - 2 {
			if code[i] == code[i+1] {
				continue
			}
			if _, err := ParseUSCC(identSwap(code, i)); err == nil || len(identSentinelsIn(err)) != 1 {
				t.Fatalf("ParseUSCC(%s), %s with positions %d,%d swapped: %v", identSwap(code, i), code, i+1, i+2, err)
			}
		}

		pid := identGenResident(rng)
		id, err = ParseResidentID(pid)
		if err != nil || id != (SubjectID{Kind: KindPerson, Value: pid}) {
			t.Fatalf("ParseResidentID(%s) = %+v, %v", pid, id, err)
		}
		if sid, err := ParseSubjectID(pid); err != nil || sid != id {
			t.Fatalf("ParseSubjectID(%s) = %+v, %v; want a person", pid, sid, err)
		}
		for pos := range identLen {
			alts := residentAlphabet
			if k >= exhaustive {
				alts = string(residentAlphabet[rng.IntN(len(residentAlphabet))])
			}
			for a := 0; a < len(alts); a++ {
				c := alts[a]
				if c == pid[pos] {
					continue
				}
				mutated := identReplace(pid, pos, c)
				_, err := ParseResidentID(mutated)
				want := ErrCheckCharacter
				switch {
				case pos < 17 && c == 'X':
					want = ErrIdentifierCharset
				case pos >= 6 && pos < 14 && !identRefValidDate(mutated[6:14]):
					want = ErrBirthDate
				}
				if !errors.Is(err, want) {
					t.Fatalf("ParseResidentID(%s), %s with position %d changed: %v, want %v", mutated, pid, pos+1, err, want)
				}
				// A broken ID number is never taken for a person.
				if sid, err := ParseSubjectID(mutated); err == nil && sid.Kind == KindPerson {
					t.Fatalf("ParseSubjectID(%s) = %+v", mutated, sid)
				}
			}
		}
		for i := range identLen - 2 {
			if pid[i] == pid[i+1] {
				continue
			}
			if _, err := ParseResidentID(identSwap(pid, i)); err == nil || len(identSentinelsIn(err)) != 1 {
				t.Fatalf("ParseResidentID(%s), %s with positions %d,%d swapped: %v", identSwap(pid, i), pid, i+1, i+2, err)
			}
		}
	}
}

func BenchmarkParseSubjectID(b *testing.B) {
	for _, bb := range []struct{ name, in string }{
		{"person", identGB11643Example},
		{"organization", "91350100M000100Y43"},
		{"organization-all-digits", "914403001922038216"},
		{"needs-normalising", "\u3000９１３５０１００ｍ０００１００ｙ４３ "},
		{"invalid-check", "91350100M000100Y44"},
		{"person-1880", identGB11643Example1880},
		{"person-15-digit", identLegacyExample},
		{"invalid-both-kinds", "110105194912310021"},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = ParseSubjectID(bb.in)
			}
		})
	}
}
