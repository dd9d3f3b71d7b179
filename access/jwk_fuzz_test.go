package access_test

import (
	"strings"
	"testing"

	"github.com/credgate/credgate/access"
)

// FuzzParseJWK feeds arbitrary bytes to the parser of the public keys an
// administrator registers for a partner. It must never panic; a key it
// accepts must have an algorithm and an id, no private member, and a
// canonical form that parses back to the same key.
func FuzzParseJWK(f *testing.F) {
	f.Add([]byte(`{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`))
	f.Add([]byte(`{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}`))
	f.Add([]byte(`{"kty":"oct","k":"c2VjcmV0"}`))
	f.Add([]byte(`{"kty":"RSA","n":"AQAB","e":"AQAB"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		k, canonical, err := access.ParseJWK(raw)
		if err != nil {
			return
		}
		if k.ID == "" || k.Key == nil || (k.Alg != "EdDSA" && k.Alg != "ES256" && k.Alg != "RS256" && k.Alg != "PS256") {
			t.Fatalf("accepted key %+v", k)
		}
		for _, private := range []string{`"d"`, `"p"`, `"q"`, `"k"`} {
			if strings.Contains(canonical, private+":") {
				t.Fatalf("canonical form keeps a private member: %s", canonical)
			}
		}
		k2, c2, err := access.ParseJWK([]byte(canonical))
		if err != nil || k2.ID != k.ID || k2.Alg != k.Alg || c2 != canonical {
			t.Fatalf("canonical form %s does not round-trip: %v", canonical, err)
		}
	})
}
