package gateway_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/credgate/credgate/access"
	"github.com/credgate/credgate/internal/testenv"
)

// An expired token of credgate's own is told to get a new one; a forged
// token, expired or not, is only invalid. Both are 401 invalid_token, so
// clients that renew on that code keep working.
func TestExpiredTokenIsToldApartFromForged(t *testing.T) {
	clk := testenv.NewClock(time.Now())
	h := newHarness(t, withTokens(access.WithClock(clk.Now), access.WithTTL(time.Minute)))
	clean := testenv.USCC(t, "91110000MA0000011")
	_, tok := h.partner("某银行", "bank_credit")
	check := func(tok string) response {
		return h.doJSON(http.MethodPost, "/v1/checks", tok, checkBody(clean, "bank_credit"))
	}
	if res := check(tok); res.Status != http.StatusOK {
		t.Fatalf("fresh token: %d %s", res.Status, res.Body)
	}
	// A forgery: the admin's claims, credgate's kid, another key.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	now := clk.Now()
	claims := jwt.MapClaims{"iss": "credgate", "aud": "credgate", "sub": adminID, "role": "admin", "cred": credOf(t, h.adminTok),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Minute).Unix()}
	ft := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	ft.Header["kid"], ft.Header["typ"] = h.tokens.KeyID(), "at+jwt"
	forged, err := ft.SignedString(other)
	if err != nil {
		t.Fatal(err)
	}

	clk.Add(2 * time.Minute)
	p := problemCode(t, check(tok), http.StatusUnauthorized, "invalid_token")
	if p["detail"] != "token expired; request a new one at /v1/oauth/token" || p["reason"] != "token_expired" {
		t.Fatalf("expired token: %v", p)
	}
	p = problemCode(t, check(forged), http.StatusUnauthorized, "invalid_token")
	if p["detail"] == "token expired; request a new one at /v1/oauth/token" || p["reason"] != nil {
		t.Fatalf("a forged expired token is told it expired: %v", p)
	}
	p = problemCode(t, check("not-a-jwt"), http.StatusUnauthorized, "invalid_token")
	if p["reason"] != nil {
		t.Fatalf("garbage: %v", p)
	}
}
