package testenv

import (
	"fmt"
	"testing"

	"github.com/credgate/credgate/policy"
)

// USCC returns the valid Unified Social Credit Code that ends the 17
// characters of prefix with the right check character.
func USCC(tb testing.TB, prefix string) string {
	tb.Helper()
	for _, c := range "0123456789ABCDEFGHJKLMNPQRTUWXY" {
		if id, err := policy.ParseUSCC(prefix + string(c)); err == nil {
			return id.Value
		}
	}
	tb.Fatalf("no valid code starts with %s", prefix)
	return ""
}

// ListedNDJSON is an import body (application/x-ndjson) putting each of
// subjects on court_dishonest_debtor, one entry a line: the tests' way of
// naming subjects in entries over the API.
func ListedNDJSON(subjects []string) []byte {
	var b []byte
	for _, s := range subjects {
		b = fmt.Appendf(b, `{"subject_id":%q,"list":"court_dishonest_debtor","originating_department":"杭州市中级人民法院","reason":"拒不履行","legal_basis":"《民事诉讼法》第二百六十二条","decided_at":"2026-07-01T00:00:00+08:00","published_at":"2026-07-03T00:00:00+08:00"}`+"\n", s)
	}
	return b
}
