package audit_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/credgate/credgate/client/audit"
)

// FuzzParseKeys: a key file is outside input (handed to verify and audit
// with --key). Whatever it holds, no private key comes out, and every key
// that comes out is a trimmed, non-empty line or JSON value.
func FuzzParseKeys(f *testing.F) {
	f.Add([]byte("# pinned\ncredgate.test+6f6af1b6+AR0b5ps0SMACa8VY3VxCNUgB14wida4LOtxC2XHwoNSb\n"))
	f.Add([]byte(`{"origin":"o","keys":[{"key":"credgate.test+6f6af1b6+AR0b5ps0SMACa8VY3VxCNUgB14wida4LOtxC2XHwoNSb"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := audit.ParseKeys(data)
		if err != nil {
			return
		}
		for _, k := range keys {
			if strings.HasPrefix(k, "PRIVATE+KEY+") {
				t.Fatalf("a private key came out of %q", data)
			}
			if strings.TrimSpace(k) != k {
				t.Fatalf("key %q not trimmed", k)
			}
		}
		if _, err := audit.Verifiers(keys); err != nil && len(keys) == 0 && !errors.Is(err, audit.ErrNoKeys) {
			t.Fatalf("no keys, but %v", err)
		}
	})
}
