package strictjson

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

type request struct {
	Subject struct {
		ID string `json:"id"`
	} `json:"subject"`
	Action    string `json:"action"`
	Reference string `json:"reference"`
	Context   *struct {
		Region string `json:"region"`
	} `json:"context"`
}

func TestDecodeKinds(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		kind       error
		field      string
	}{
		{"exact", `{"subject":{"id":"x"},"action":"a"}`, nil, ""},
		{"syntax", `{"action":`, ErrMalformed, ""},
		{"empty", ``, ErrMalformed, ""},
		{"trailing", `{"action":"a"} {}`, ErrMalformed, ""},
		{"unknown", `{"colour":"red"}`, ErrMalformed, "colour"},
		{"wrong type", `{"action":1}`, ErrMalformed, "action"},
		{"case", `{"subject":{"ID":"x"}}`, ErrMalformed, "subject.ID"},
		{"duplicate", `{"action":"a","action":"b"}`, ErrDuplicateKey, "action"},
		{"not utf-8", "{\"action\":\"\xff\"}", ErrInvalidUTF8, ""},
		{"lone surrogate", `{"reference":"\ud800"}`, ErrInvalidUTF8, "reference"},
		{"NUL", `{"reference":"采购\u0000项目"}`, ErrControlCharacter, "reference"},
		{"NUL at the end", `{"subject":{"id":"x\u0000"}}`, ErrControlCharacter, "subject.id"},
		{"escape character", `{"reference":"a\u001b[2J"}`, ErrControlCharacter, "reference"},
		{"unit separator", `{"reference":"a\u001F"}`, ErrControlCharacter, "reference"},
		{"backspace", `{"reference":"a\bb"}`, ErrControlCharacter, "reference"},
		{"form feed", `{"reference":"a\fb"}`, ErrControlCharacter, "reference"},
		{"NUL in a key", `{"reference":"r","a\u0000":1}`, ErrMalformed, "a\x00"},
		{"tab, line feed, carriage return", `{"reference":"a\tb\nc\r\u0009\u000a\u000D"}`, nil, ""},
		{"escaped backslash before u0000", `{"reference":"\\u0000"}`, nil, ""},
		{"DEL and C1 are not C0", `{"reference":"\u007f\u0085"}`, nil, ""},
	} {
		var req request
		err := Decode([]byte(tc.body), &req)
		if tc.kind == nil {
			if err != nil {
				t.Errorf("%s: refused: %v", tc.name, err)
			}
			continue
		}
		var se *Error
		if !errors.As(err, &se) || !errors.Is(err, tc.kind) || se.Field != tc.field {
			t.Errorf("%s: got %v (%#v), want %v field %q", tc.name, err, se, tc.kind, tc.field)
		}
	}
}

// A refusal speaks of JSON values, never of the server's Go types.
func TestDecodeDetailsSpeakJSON(t *testing.T) {
	for body, want := range map[string]string{
		`[]`:                   "the body must be an object",
		`{"subject":"x"}`:      `field "subject" must be an object`,
		`{"subject":{"id":1}}`: `field "subject.id" must be a string`,
		`{"colour":"red"}`:     `unknown field "colour"`,
	} {
		var req request
		err := Decode([]byte(body), &req)
		var se *Error
		if !errors.As(err, &se) || se.Detail != want {
			t.Errorf("%s: detail %q, want %q", body, se.Detail, want)
		}
	}
}

// The strict pass costs few allocations on a check request (see strict.go).
func TestDecodeStrictAllocs(t *testing.T) {
	body := []byte(`{"subject":{"id":"91350100M000100Y43"},"action":"government_procurement","reference":"采购-1","context":{"region":"350100"}}`)
	var strictAllocs float64 = testing.AllocsPerRun(200, func() {
		var req request
		_ = checkStrict(body, reflect.TypeOf(&req))
	})
	// Measured 4 (decodeCheckRequest as a whole: 16 before the strict
	// checks, 22 with them, reading the body whole included).
	if strictAllocs > 6 {
		t.Fatalf("strict pass: %v allocations per check request", strictAllocs)
	}
	t.Logf("strict pass: %v allocations per check request", strictAllocs)
}

func TestValidText(t *testing.T) {
	for _, tc := range []struct {
		text string
		kind error
	}{
		{"采购项目 2026-118", nil},
		{"第一行\r\n第二行\t制表", nil},
		{"\x7f\u0085", nil},
		{"采购\x00项目", ErrControlCharacter},
		{"a\x1b[2J", ErrControlCharacter},
		{"\x0c", ErrControlCharacter},
		{"法院\xb7\xa8", ErrInvalidUTF8},
	} {
		err := ValidText([]byte(tc.text))
		if !errors.Is(err, tc.kind) || (tc.kind == nil) != (err == nil) {
			t.Errorf("%q: got %v, want %v", tc.text, err, tc.kind)
		}
		if err != nil && strings.Contains(err.Error(), tc.text) {
			t.Errorf("%q: the refusal repeats the text: %v", tc.text, err)
		}
	}
}
