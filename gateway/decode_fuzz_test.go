package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
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
