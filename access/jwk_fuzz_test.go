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

// FuzzParseJWKS feeds arbitrary bytes to the JWK Set parser (--jwks files,
// partner registrations). It must never panic; a set it accepts holds 1 to
// MaxPublicKeys keys, each of which ParseJWK accepts alone with the same
// id and canonical form.
func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`))
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		keys, canon, err := access.ParseJWKS(raw)
		if err != nil {
			return
		}
		if len(keys) == 0 || len(keys) > access.MaxPublicKeys || len(canon) != len(keys) {
			t.Fatalf("accepted %d keys (%d canonical forms)", len(keys), len(canon))
		}
		for i, c := range canon {
			k, c2, err := access.ParseJWK([]byte(c))
			if err != nil || k.ID != keys[i].ID || c2 != c {
				t.Fatalf("key %d: canonical form %s does not parse alone: %v", i, c, err)
			}
		}
	})
}
