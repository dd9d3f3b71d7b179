package access_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/credgate/credgate/access"
)

func rsaJWK(pub *rsa.PublicKey, alg string) []byte {
	e := big.NewInt(int64(pub.E)).Bytes()
	m := map[string]string{"kty": "RSA", "n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()), "e": base64.RawURLEncoding.EncodeToString(e)}
	if alg != "" {
		m["alg"] = alg
	}
	b, _ := json.Marshal(m)
	return b
}

func TestParseJWK(t *testing.T) {
	t.Parallel()
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecBytes, _ := ec.PublicKey.Bytes()
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	b64 := base64.RawURLEncoding.EncodeToString
	for name, tc := range map[string]struct {
		jwk string
		alg string
	}{
		"Ed25519":  {fmt.Sprintf(`{"kty":"OKP","crv":"Ed25519","x":%q,"kid":"ed"}`, b64(edPub)), "EdDSA"},
		"P-256":    {fmt.Sprintf(`{"kty":"EC","crv":"P-256","x":%q,"y":%q}`, b64(ecBytes[1:33]), b64(ecBytes[33:])), "ES256"},
		"RSA":      {string(rsaJWK(&rk.PublicKey, "")), "RS256"},
		"RSA PSS":  {string(rsaJWK(&rk.PublicKey, "PS256")), "PS256"},
		"with x5c": {fmt.Sprintf(`{"kty":"OKP","crv":"Ed25519","x":%q,"use":"sig","x5c":["MII"]}`, b64(edPub)), "EdDSA"},
	} {
		k, canonical, err := access.ParseJWK([]byte(tc.jwk))
		if err != nil || k.Alg != tc.alg || k.ID == "" {
			t.Errorf("%s: %+v %v", name, k, err)
			continue
		}
		// The canonical form parses to the same key and id.
		k2, c2, err := access.ParseJWK([]byte(canonical))
		if err != nil || k2.ID != k.ID || c2 != canonical {
			t.Errorf("%s: canonical form %s does not round-trip: %v", name, canonical, err)
		}
	}
	notOnCurve := fmt.Sprintf(`{"kty":"EC","crv":"P-256","x":%q,"y":%q}`, b64(make([]byte, 32)), b64(make([]byte, 32)))
	for name, bad := range map[string]string{
		"not JSON":       `{"kty":`,
		"not on curve":   notOnCurve,
		"P-384":          `{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}`,
		"short Ed25519":  `{"kty":"OKP","crv":"Ed25519","x":"AAAA"}`,
		"X25519":         fmt.Sprintf(`{"kty":"OKP","crv":"X25519","x":%q}`, b64(edPub)),
		"use enc":        fmt.Sprintf(`{"kty":"OKP","crv":"Ed25519","x":%q,"use":"enc"}`, b64(edPub)),
		"padded base64":  fmt.Sprintf(`{"kty":"OKP","crv":"Ed25519","x":%q}`, base64.URLEncoding.EncodeToString(edPub)),
		"even exponent":  `{"kty":"RSA","n":"` + b64(rk.N.Bytes()) + `","e":"Ag"}`,
		"huge":           `{"kty":"OKP","pad":"` + strings.Repeat("x", 9000) + `"}`,
		"weak RSA":       string(rsaJWK(&weak.PublicKey, "")),
		"RSA with ES256": string(rsaJWK(&rk.PublicKey, "ES256")),
		"alg mismatch":   fmt.Sprintf(`{"kty":"OKP","crv":"Ed25519","x":%q,"alg":"HS256"}`, b64(edPub)),
		"symmetric":      `{"kty":"oct","k":"c2VjcmV0"}`,
		"private":        fmt.Sprintf(`{"kty":"OKP","crv":"Ed25519","x":%q,"d":"c2VjcmV0"}`, b64(edPub)),
		"kid not text":   fmt.Sprintf(`{"kty":"OKP","crv":"Ed25519","x":%q,"kid":7}`, b64(edPub)),
		"null":           `null`,
	} {
		if _, _, err := access.ParseJWK([]byte(bad)); !errors.Is(err, access.ErrInvalidKey) {
			t.Errorf("%s: err %v, want ErrInvalidKey", name, err)
		}
	}
}

// The kid credgate derives for a key without one is its RFC 7638
// thumbprint (RFC 7638 §3.1's example key and thumbprint).
func TestParseJWKThumbprint(t *testing.T) {
	t.Parallel()
	const n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	k, _, err := access.ParseJWK([]byte(`{"kty":"RSA","n":"` + n + `","e":"AQAB","alg":"RS256"}`))
	if err != nil {
		t.Fatal(err)
	}
	if k.ID != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Fatalf("kid %q is not the RFC 7638 thumbprint", k.ID)
	}
}

func TestParseJWKS(t *testing.T) {
	t.Parallel()
	a, _, _ := ed25519.GenerateKey(rand.Reader)
	b, _, _ := ed25519.GenerateKey(rand.Reader)
	key := func(pub ed25519.PublicKey) string {
		return fmt.Sprintf(`{"kty":"OKP","crv":"Ed25519","x":%q}`, base64.RawURLEncoding.EncodeToString(pub))
	}
	keys, canon, err := access.ParseJWKS([]byte(`{"keys":[` + key(a) + `,` + key(b) + `]}`))
	if err != nil || len(keys) != 2 || len(canon) != 2 || keys[0].ID == keys[1].ID {
		t.Fatalf("%+v %v", keys, err)
	}
	for name, bad := range map[string]string{
		"empty":      `{"keys":[]}`,
		"not a set":  `[` + key(a) + `]`,
		"bad member": `{"keys":[` + key(a) + `,{"kty":"oct","k":"c2VjcmV0"}]}`,
		"too many":   `{"keys":[` + strings.Repeat(key(a)+",", access.MaxPublicKeys) + key(a) + `]}`,
	} {
		if _, _, err := access.ParseJWKS([]byte(bad)); !errors.Is(err, access.ErrInvalidKey) {
			t.Errorf("%s: err %v, want ErrInvalidKey", name, err)
		}
	}
}
