package evidence_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
)

// The leaf is written without strings.Builder or time.Format (record.go):
// its bytes and its RFC 6962 hash must stay what the format says, for
// short records built on the stack and for long ones that outgrow it.
func TestLeafHashAsSpecified(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 4, 22, 10, 5, 123456789, time.FixedZone("CST", 8*3600))
	for name, r := range map[string]evidence.Record{
		"check":      {ID: "019aeb4c-0000-7000-8000-000000000001", Kind: evidence.KindCheck, Partner: "client-1", At: at},
		"no partner": {ID: "act-1", Kind: evidence.KindAdmin, At: at.UTC()},
		"long":       {ID: strings.Repeat("长", 300), Kind: evidence.KindFeedback, Partner: strings.Repeat("p", 200), At: at},
		"zero time":  {ID: "x", Kind: evidence.KindCheck, Partner: "c"},
	} {
		r.Body = []byte(`{"a":1}`)
		r.Salt = []byte("0123456789abcdef")
		r.Hash = evidence.RecordHash(r.Salt, r.Body)
		want := fmt.Sprintf("credgate-evidence-v1\nid %s\nkind %s\npartner %s\nat %s\nhash %s\n",
			r.ID, r.Kind, r.Partner, r.At.UTC().Truncate(time.Microsecond).Format("2006-01-02T15:04:05.000000Z"), hex.EncodeToString(r.Hash[:]))
		if got := string(evidence.LeafData(r)); got != want {
			t.Errorf("%s: leaf data %q, want %q", name, got, want)
		}
		if got, want := evidence.LeafHash(r), sha256.Sum256(append([]byte{0}, want...)); got != want {
			t.Errorf("%s: leaf hash %x, want %x", name, got, want)
		}
	}
}

// A check's leaf is hashed twice per check (before its commit and for its
// receipt): it must not allocate.
func TestLeafHashDoesNotAllocate(t *testing.T) {
	r := evidence.Record{ID: "019aeb4c-0000-7000-8000-000000000001", Kind: evidence.KindCheck, Partner: "bench-partner-0001", At: time.Now()}
	if n := testing.AllocsPerRun(100, func() { _ = evidence.LeafHash(r) }); n != 0 {
		t.Errorf("LeafHash: %v allocations, want 0", n)
	}
}
