package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeCheckRequest: the check request decoder never panics, every
// failure is a problem with a 4xx status and a code, and every success has
// the required fields and survives a round trip.
func FuzzDecodeCheckRequest(f *testing.F) {
	f.Add([]byte(`{"subject":{"id":"91350100M000100Y43"},"action":"government_procurement","reference":"采购-1"}`))
	f.Add([]byte(`{"subject":{"id":"91350100M000100Y43"},"action":"government_procurement"} {}`))
	f.Add([]byte(`{"subject":{"id":1},"action":[]}`))
	f.Add([]byte(`{"subjct":{}}`))
	f.Add([]byte(`{"subject":{"id":"\u0000"},"action":"\ud800"}`))
	f.Add([]byte(``))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[`))
	f.Add([]byte(`{"subject":{"id":"11010519491231002X"},"action":"executive_appointment","as_of":"2026-04-01T10:00:00.123456+08:00"}`))
	f.Add([]byte(`{"subject":{"id":"x"},"action":"y","as_of":"2026-13-01T00:00:00Z"}`))
	f.Add([]byte(`{"subject":{"id":"x"},"action":"y","as_of":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := decodeCheckRequest(bytes.NewReader(data))
		if err != nil {
			var p *Problem
			if !errors.As(err, &p) || p.Status < 400 || p.Status > 499 || p.Code == "" {
				t.Fatalf("decode error is not a 4xx problem: %#v", err)
			}
			return
		}
		if req.Subject.ID == "" || req.Action == "" {
			t.Fatalf("accepted without required fields: %+v", req)
		}
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeCheckRequest(bytes.NewReader(b))
		// as_of is a pointer: compare the instants it points to.
		sameAsOf := (again.AsOf == nil) == (req.AsOf == nil) && (req.AsOf == nil || again.AsOf.Equal(*req.AsOf))
		again.AsOf, req.AsOf = nil, nil
		if err != nil || again != req || !sameAsOf {
			t.Fatalf("round trip: %+v, %v", again, err)
		}
	})
}

// FuzzFastCheckRequest: whatever the fast path of check requests accepts,
// the general path (encoding/json and the strict pass) accepts too and
// decodes to the same request.
func FuzzFastCheckRequest(f *testing.F) {
	for _, s := range []string{
		`{"subject":{"id":"91350100M000100Y43"},"action":"government_procurement","reference":"credgate-bench"}`,
		" {\n\t\"action\" : \"a\" , \"subject\" : { \"id\" : \"x\" } }\r\n",
		`{}`, `{"subject":{"id":""}}`, `{"reference":"采购-1","action":"a","subject":{"id":"x"}}`,
		`{"action":"a","action":"b"}`, `{"Action":"a"}`, `{"action":"a\u0062"}`, `{"action":null}`,
		`{"subject":{"id":"x","id":"y"}}`, `{"subject":{}}`, `{"action":"a",}`, `{"action":"a"}x`, `{"action":"a"} {}`,
		"{\"action\":\"a\x01\"}", `{"subject":{"id":"x"},"context":{"region":"110000"}}`, `{,"action":"a"}`, `{"action" "a"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !utf8.Valid(data) {
			return // decodeCheckRequest refuses before either path
		}
		fast, ok := fastCheckRequest(data)
		if !ok {
			return
		}
		var slow checkRequest
		if err := decodeRaw(data, &slow); err != nil {
			t.Fatalf("the fast path accepted %q, the general path refuses it: %v", data, err)
		}
		if slow.AsOf != nil || slow.ValidAt != nil || slow.Context != nil {
			t.Fatalf("the general path read more of %q than the fast path: %+v", data, slow)
		}
		if fast != slow {
			t.Fatalf("%q: fast path %+v, general path %+v", data, fast, slow)
		}
	})
}

// TestCheckRequestTakesTheFastPath: the body clients send is decoded by
// the fast path (else the general path would answer the same, slower, and
// no test of behaviour would notice).
func TestCheckRequestTakesTheFastPath(t *testing.T) {
	body := []byte(`{"subject":{"id":"91350100M000100Y43"},"action":"government_procurement","reference":"采购-1"}`)
	req, ok := fastCheckRequest(body)
	if !ok {
		t.Fatal("the usual check request missed the fast path")
	}
	if req.Subject.ID != "91350100M000100Y43" || req.Action != "government_procurement" || req.Reference != "采购-1" {
		t.Fatalf("decoded %+v", req)
	}
	for _, s := range []string{`{"action":"a","action":"b"}`, `{"Action":"a"}`, `{"action":"\u0061"}`, `{"subject":{"ID":"x"}}`} {
		if _, ok := fastCheckRequest([]byte(s)); ok {
			t.Errorf("%s took the fast path", s)
		}
	}
}
