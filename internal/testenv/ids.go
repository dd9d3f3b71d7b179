package testenv

import (
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
