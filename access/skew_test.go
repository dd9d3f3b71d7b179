package access_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/credgate/credgate/access"
)

// credgate's own tokens: stamped up to 5 s ahead (a replica whose clock
// runs ahead) they verify; further ahead they are ErrTokenNotYetValid, an
// ErrInvalidToken that is neither expired nor taken for a forgery; a
// forged one stamped ahead is only invalid.
func TestTokenClockSkew(t *testing.T) {
	t.Parallel()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	verifier := access.NewTokens(key, access.WithClock(func() time.Time { return now }))
	issue := func(k ed25519.PrivateKey, ahead time.Duration) string {
		tok, err := access.NewTokens(k, access.WithClock(func() time.Time { return now.Add(ahead) })).Issue("cg_x", "partner", "sec_1")
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	if _, err := verifier.Verify(issue(key, access.TokenLeeway)); err != nil {
		t.Fatalf("token %s ahead: %v", access.TokenLeeway, err)
	}
	_, err := verifier.Verify(issue(key, access.TokenLeeway+time.Second))
	if !errors.Is(err, access.ErrTokenNotYetValid) || !errors.Is(err, access.ErrInvalidToken) || errors.Is(err, access.ErrTokenExpired) {
		t.Fatalf("token %s ahead: %v, want ErrTokenNotYetValid", access.TokenLeeway+time.Second, err)
	}
	if _, err := verifier.Verify(issue(other, time.Minute)); !errors.Is(err, access.ErrInvalidToken) || errors.Is(err, access.ErrTokenNotYetValid) {
		t.Fatalf("forged token ahead: %v, want ErrInvalidToken only", err)
	}
}

// Partners' assertions: iat and nbf may be up to AssertionSkew (60 s)
// ahead, exp at most TokenLeeway behind; past either edge they are
// refused, as ErrAssertionNotYetValid only for the first.
func TestAssertionClockSkew(t *testing.T) {
	t.Parallel()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	tokens := access.NewTokens(key, access.WithClock(func() time.Time { return now }))
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	keys := []access.PublicKey{{ID: "k", Alg: "EdDSA", Key: pub}}
	sign := func(k ed25519.PrivateKey, iat, nbf, exp time.Duration) string {
		c := jwt.MapClaims{"iss": "cg_bank", "sub": "cg_bank", "aud": "credgate", "jti": "j",
			"iat": now.Add(iat).Unix(), "exp": now.Add(exp).Unix()}
		if nbf != 0 {
			c["nbf"] = now.Add(nbf).Unix()
		}
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
		tok.Header["kid"] = "k"
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	skew := access.AssertionSkew
	for name, tc := range map[string]struct {
		raw        string
		ok, notYet bool
	}{
		"iat at the tolerance":         {raw: sign(priv, skew, 0, 2*time.Minute), ok: true},
		"iat past the tolerance":       {raw: sign(priv, skew+time.Second, 0, 2*time.Minute), notYet: true},
		"nbf at the tolerance":         {raw: sign(priv, 0, skew, 2*time.Minute), ok: true},
		"nbf past the tolerance":       {raw: sign(priv, 0, skew+time.Second, 2*time.Minute), notYet: true},
		"exp within its leeway":        {raw: sign(priv, -time.Minute, 0, -access.TokenLeeway+time.Second), ok: true},
		"exp past its leeway":          {raw: sign(priv, -time.Minute, 0, -access.TokenLeeway), ok: false},
		"lifetime at the limit, ahead": {raw: sign(priv, skew, 0, access.MaxAssertionLifetime+skew), ok: true},
		"lifetime past the limit":      {raw: sign(priv, 0, 0, access.MaxAssertionLifetime+skew+time.Second), ok: false},
		"forged, ahead":                {raw: sign(otherPriv, 2*skew, 0, 2*time.Minute), ok: false},
	} {
		_, err := tokens.VerifyAssertion(tc.raw, "cg_bank", keys)
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v, want accepted", name, err)
		case !tc.ok && !errors.Is(err, access.ErrInvalidAssertion):
			t.Errorf("%s: %v, want ErrInvalidAssertion", name, err)
		case !tc.ok && errors.Is(err, access.ErrAssertionNotYetValid) != tc.notYet:
			t.Errorf("%s: %v, ErrAssertionNotYetValid should be %v", name, err, tc.notYet)
		}
	}
}
