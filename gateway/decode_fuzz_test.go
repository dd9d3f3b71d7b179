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
		if err != nil || again != req {
			t.Fatalf("round trip: %+v, %v", again, err)
		}
	})
}
