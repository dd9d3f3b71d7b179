package access_test

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/credgate/credgate/access"
)

// fuzzNow is the fixed time of the token fuzz test, so that its seed
// corpus stays valid.
func fuzzNow() time.Time { return time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC) }

// fuzzKey is a fixed key (the fuzz test needs reproducible tokens).
func fuzzKey() ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, "credgate token fuzz seed 0000000")
	return ed25519.NewKeyFromSeed(seed)
}

// fuzzValidToken is the one valid token of the fuzz test. Ed25519
// signatures are deterministic, so it is the same string every run.
func fuzzValidToken(tb testing.TB) string {
	tb.Helper()
	key := fuzzKey()
	claims := jwt.MapClaims{"iss": "credgate", "aud": "credgate", "sub": "cg_fuzz", "role": "partner", "cred": "sec_fuzz",
		"iat": fuzzNow().Unix(), "nbf": fuzzNow().Unix(), "exp": fuzzNow().Add(15 * time.Minute).Unix(), "jti": "fuzz-0"}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = access.KeyID(key.Public().(ed25519.PublicKey))
	tok.Header["typ"] = "at+jwt"
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// FuzzVerify feeds arbitrary strings to the access token verifier (the
// parser every request's Authorization header reaches). It must never
// panic, and it must accept exactly one string: the valid token itself.
// Any other accepted input would be a forgery or a second encoding of a
// token (malleability). The seed corpus in testdata/fuzz/FuzzVerify holds
// the attacks of TestAuthentication: alg none, HS256 keyed with the public
// key, wrong typ, tampered payload, deep nesting, oversize, garbage.
func FuzzVerify(f *testing.F) {
	valid := fuzzValidToken(f)
	f.Add(valid)
	f.Add("")
	f.Add("a.b.c")
	f.Add(strings.Repeat("a", 5000))
	tokens := access.NewTokens(fuzzKey(), access.WithClock(fuzzNow))
	f.Fuzz(func(t *testing.T, raw string) {
		// A fresh cache per input would hide nothing: the cache is keyed
		// by the exact bytes, and only verified tokens enter it.
		claims, err := tokens.Verify(raw)
		if err != nil {
			return
		}
		if raw != valid {
			t.Fatalf("accepted a token that credgate did not issue: %q (claims %+v)", raw, claims)
		}
		if claims.Subject != "cg_fuzz" || claims.Cred != "sec_fuzz" || claims.Role != "partner" {
			t.Fatalf("claims %+v", claims)
		}
	})
}

// fuzzPartnerKey is the fixed key of the assertion fuzz test's partner.
func fuzzPartnerKey() ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, "credgate assertion fuzz seed 000")
	return ed25519.NewKeyFromSeed(seed)
}

// fuzzValidAssertion is a valid client assertion of the fuzz test, with
// or without a kid header (deterministic, like fuzzValidToken).
func fuzzValidAssertion(tb testing.TB, withKid bool) string {
	tb.Helper()
	claims := jwt.MapClaims{"iss": "cg_fuzz", "sub": "cg_fuzz", "aud": "credgate", "iat": fuzzNow().Unix(),
		"exp": fuzzNow().Add(2 * time.Minute).Unix(), "jti": "fuzz-jti-0"}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	if withKid {
		tok.Header["kid"] = "fuzz-key"
	}
	s, err := tok.SignedString(fuzzPartnerKey())
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// FuzzVerifyAssertion feeds arbitrary strings to the client assertion path
// of the token endpoint (private_key_jwt): reading the claimed client id
// unverified, then verifying against the partner's keys. It must never
// panic and must accept only what the partner signed: the valid assertion,
// with or without its kid header.
func FuzzVerifyAssertion(f *testing.F) {
	valid, noKid := fuzzValidAssertion(f, true), fuzzValidAssertion(f, false)
	f.Add(valid)
	f.Add(noKid)
	f.Add("")
	f.Add("e30.e30.")
	tokens := access.NewTokens(fuzzKey(), access.WithClock(fuzzNow))
	keys := []access.PublicKey{{ID: "fuzz-key", Alg: "EdDSA", Key: fuzzPartnerKey().Public()}}
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := access.AssertionClientID(raw)
		if err != nil {
			return
		}
		a, err := tokens.VerifyAssertion(raw, id, keys)
		if err != nil {
			return
		}
		if (raw != valid && raw != noKid) || a.ClientID != "cg_fuzz" || a.KeyID != "fuzz-key" || a.JTI != "fuzz-jti-0" {
			t.Fatalf("accepted an assertion the partner did not sign: %q → %+v", raw, a)
		}
	})
}
