package gateway

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeStrict(t *testing.T) {
	cases := []struct {
		name, body, code, field string
	}{
		{"exact", `{"subject":{"id":"x"},"action":"a","reference":"r"}`, "", ""},
		{"escaped key is the same key", `{"subject":{"id":"x"},"\u0061ction":"a"}`, "", ""},
		{"surrogate pair", `{"subject":{"id":"x"},"action":"a","reference":"\ud83d\ude00"}`, "", ""},
		{"time is opaque", `{"subject":{"id":"x"},"action":"a","as_of":"2026-01-01T00:00:00Z"}`, "", ""},
		{"case of a field", `{"subject":{"id":"x"},"Action":"a"}`, "invalid_json", "Action"},
		{"case of a nested field", `{"subject":{"ID":"x"},"action":"a"}`, "invalid_json", "subject.ID"},
		{"case of a context field", `{"subject":{"id":"x"},"action":"a","context":{"Region":"110000"}}`, "invalid_json", "context.Region"},
		{"duplicate", `{"subject":{"id":"x"},"action":"a","action":"b"}`, "duplicate_field", "action"},
		{"duplicate by escape", `{"subject":{"id":"x"},"action":"a","\u0061ction":"b"}`, "duplicate_field", "action"},
		{"duplicate nested", `{"subject":{"id":"x","id":"y"},"action":"a"}`, "duplicate_field", "subject.id"},
		{"duplicate differing in case", `{"subject":{"id":"x"},"action":"a","ACTION":"b"}`, "invalid_json", "ACTION"},
		{"invalid utf-8", "{\"subject\":{\"id\":\"x\"},\"action\":\"a\",\"reference\":\"\xff\"}", "invalid_utf8", ""},
		{"overlong utf-8", "{\"subject\":{\"id\":\"x\"},\"action\":\"a\",\"reference\":\"\xc0\xaf\"}", "invalid_utf8", ""},
		{"lone high surrogate", `{"subject":{"id":"x"},"action":"a","reference":"\ud800"}`, "invalid_utf8", "reference"},
		{"lone low surrogate", `{"subject":{"id":"x"},"action":"a","reference":"a\udc00b"}`, "invalid_utf8", "reference"},
		{"reversed pair", `{"subject":{"id":"x"},"action":"a","reference":"\ude00\ud83d"}`, "invalid_utf8", "reference"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeCheckRequest(strings.NewReader(tc.body))
			if tc.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var p *Problem
			if !errors.As(err, &p) {
				t.Fatalf("want problem %s, got %v", tc.code, err)
			}
			if p.Status != 400 || p.Code != tc.code || p.Field != tc.field {
				t.Fatalf("got %d %s field %q (%s), want 400 %s field %q", p.Status, p.Code, p.Field, p.Detail, tc.code, tc.field)
			}
		})
	}
}

// Maps and interfaces: keys are free, duplicates are not, at any depth and
// past the pairwise comparison's size.
func TestDecodeStrictMaps(t *testing.T) {
	var m map[string]any
	if err := decodeJSON(strings.NewReader(`{"A":1,"a":2,"x":[{"k":1},{"k":2}]}`), &m); err != nil {
		t.Fatalf("distinct keys refused: %v", err)
	}
	var b strings.Builder
	b.WriteString(`{"x":[{"k":1,"k":2}]}`)
	err := decodeJSON(strings.NewReader(b.String()), &m)
	var p *Problem
	if !errors.As(err, &p) || p.Code != "duplicate_field" || p.Field != "x[0].k" {
		t.Fatalf("nested duplicate: %v", err)
	}
	b.Reset()
	b.WriteString("{")
	for i := range 100 {
		b.WriteString(`"k` + strings.Repeat("x", i) + `":1,`)
	}
	b.WriteString(`"kxxxxx":2}`)
	err = decodeJSON(strings.NewReader(b.String()), &m)
	if !errors.As(err, &p) || p.Code != "duplicate_field" {
		t.Fatalf("duplicate past the pairwise comparison: %v", err)
	}
}
