package gateway_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/credgate/credgate/access"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/testenv"
)

// Clock skew: a token credgate signed on a replica whose clock runs ahead
// is refused, past 5 s, as not yet valid rather than as forged; a
// partner's assertion is accepted up to 60 s ahead and, past that, refused
// as not yet valid, without counting toward the lockout.
func TestClockSkew(t *testing.T) {
	var logs testenv.SyncBuffer
	h := newHarness(t, withGateway(gateway.WithLogger(slog.New(slog.NewTextHandler(&logs, nil)))),
		withLimiter(t, gateway.DefaultRateLimit, gateway.WithAuthFailureLimits("2-M", "2-M")))
	clean := testenv.USCC(t, "91110000MA0000005")
	body := checkBody(clean, "bank_credit")
	id, tok := h.partner("某银行", "bank_credit")
	p, err := h.store.PartnerByClientID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	// Another replica, same key, its clock ahead.
	fast := func(d time.Duration) string {
		s, err := access.NewTokens(h.key, access.WithClock(func() time.Time { return time.Now().Add(d) })).Issue(p.ClientID, string(p.Role), credOf(t, tok))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if res := h.doJSON(http.MethodPost, "/v1/checks", fast(4*time.Second), body); res.Status != http.StatusOK {
		t.Fatalf("token 4 s ahead: %d %s", res.Status, res.Body)
	}
	ahead := problemCode(t, h.doJSON(http.MethodPost, "/v1/checks", fast(10*time.Second), body), http.StatusUnauthorized, "invalid_token")
	if d, _ := ahead["detail"].(string); !strings.Contains(d, "not yet valid (clock skew)") {
		t.Errorf("token 10 s ahead: detail %q, want it to name the clock skew", d)
	}
	if !strings.Contains(logs.String(), "not yet valid (clock skew") {
		t.Errorf("the skew is not logged:\n%s", logs.String())
	}
	// A tampered token stamped ahead is just invalid.
	forged := problemCode(t, h.doJSON(http.MethodPost, "/v1/checks", tamper(fast(10*time.Second)), body), http.StatusUnauthorized, "invalid_token")
	if d, _ := forged["detail"].(string); strings.Contains(d, "skew") {
		t.Errorf("tampered token: detail %q names the skew", d)
	}

	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	kc := h.createPartner(map[string]any{"name": "密钥", "actions": []string{"bank_credit"}, "jwks": map[string]any{"keys": []any{edJWK(pub, "k")}}})
	kp := keyPartner{id: kc["client_id"].(string), kid: "k", alg: jwt.SigningMethodEdDSA, priv: priv}
	stamped := func(d time.Duration) string {
		return kp.assertion(t, func(c jwt.MapClaims) {
			now := time.Now().Add(d)
			c["iat"], c["nbf"], c["exp"] = now.Unix(), now.Unix(), now.Add(2*time.Minute).Unix()
		}, nil)
	}
	const from = "198.51.100.70:1"
	for _, d := range []time.Duration{7 * time.Second, 55 * time.Second} {
		if res := h.tokenForm(from, assertionForm(stamped(d))); res.Status != http.StatusOK {
			t.Fatalf("assertion %s ahead: %d %s", d, res.Status, res.Body)
		}
	}
	// Past the tolerance, more times than the allowance of failures: each
	// says why, and none counts as a failure.
	for i := range 3 {
		pr := problemCode(t, h.tokenForm(from, assertionForm(stamped(2*time.Minute))), http.StatusUnauthorized, "invalid_client")
		if d, _ := pr["detail"].(string); !strings.Contains(d, "not yet valid (clock skew)") {
			t.Fatalf("assertion 2 min ahead (%d): detail %q, want it to name the clock skew", i, d)
		}
	}
	if res := h.tokenForm(from, assertionForm(stamped(0))); res.Status != http.StatusOK {
		t.Fatalf("assertion after refusals for skew: %d %s", res.Status, res.Body)
	}
	if !strings.Contains(logs.String(), "assertion not yet valid (clock skew)") {
		t.Errorf("the assertion's skew is not logged:\n%s", logs.String())
	}
}
