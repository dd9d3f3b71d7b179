package sqlcommon

import (
	"testing"

	"github.com/credgate/credgate/evidence"
)

// TestIdempotencyKeyOfRecord: the key of a record is its facts' when it has
// them, else its body's (a record spooled or re-run as of a past time), and
// none for other kinds, keyless bodies and bodies not credgate's.
func TestIdempotencyKeyOfRecord(t *testing.T) {
	for _, c := range []struct {
		name string
		rec  evidence.Record
		want string
	}{
		{"facts", evidence.Record{Kind: evidence.KindCheck, Check: &evidence.CheckFacts{IdempotencyKey: "k"},
			Body: []byte(`{"check_id":"c","idempotency_key":"other"}`)}, "k"},
		{"keyless facts", evidence.Record{Kind: evidence.KindCheck, Check: &evidence.CheckFacts{},
			Body: []byte(`{"check_id":"c","idempotency_key":"other"}`)}, ""},
		{"body", evidence.Record{Kind: evidence.KindCheck, Body: []byte(`{"check_id":"c","action":"a","idempotency_key":"k-1"}`)}, "k-1"},
		{"escaped", evidence.Record{Kind: evidence.KindCheck, Body: []byte(`{"check_id":"c","idempotency_key":"a\"b\\c"}`)}, `a"b\c`},
		{"keyless body", evidence.Record{Kind: evidence.KindCheck, Body: []byte(`{"check_id":"c","action":"a"}`)}, ""},
		{"nested only", evidence.Record{Kind: evidence.KindCheck, Body: []byte(`{"check_id":"c","context":{"idempotency_key":"k"}}`)}, ""},
		{"not a string", evidence.Record{Kind: evidence.KindCheck, Body: []byte(`{"check_id":"c","idempotency_key":1}`)}, ""},
		{"malformed", evidence.Record{Kind: evidence.KindCheck, Body: []byte(`{"check_id":"c","idempotency_key":"k"`)}, ""},
		{"not credgate's", evidence.Record{Kind: evidence.KindCheck, Body: []byte(`{"idempotency_key":"k"}`)}, ""},
		{"an act", evidence.Record{Kind: evidence.KindAdmin, Body: []byte(`{"check_id":"c","idempotency_key":"k"}`)}, ""},
	} {
		if got := IdempotencyKey(&c.rec); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
