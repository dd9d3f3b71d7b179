package strictjson

import (
	"errors"
	"reflect"
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
