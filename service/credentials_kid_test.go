package service_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/service"
)

// edKey is a fresh Ed25519 public JWK with the given kid.
func edKey(t *testing.T, kid string) []byte {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Appendf(nil, `{"kty":"OKP","crv":"Ed25519","kid":%q,"x":%q}`, kid, base64.RawURLEncoding.EncodeToString(pub))
}

// A token names the credential it was issued for, and a key credential's
// id is the partner's kid: a new key under an old kid would revive the
// tokens of the key it replaced, even with overlap 0. So a rotation's kid
// must be new to the partner, whatever the overlap, including keys ended
// within EndedKeyMemory; after that the kid is free again.
func TestRotationRefusesAKidThePartnerHeld(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := asAdmin(t.Context())
	p, _, err := f.partners.Create(ctx, service.NewPartnerInput{Name: "某银行", Actions: []string{"bank_credit"}, JWKS: [][]byte{edKey(t, "k1")}})
	if err != nil {
		t.Fatal(err)
	}
	const tokenOfK1 = "k1" // what a token obtained with k1's assertion names
	refused := func(p service.Partner, overlap time.Duration, kid string) {
		t.Helper()
		_, _, err := f.partners.Rotate(ctx, p.ClientID, service.RotateInput{Overlap: overlap, JWKS: [][]byte{edKey(t, "k9"), edKey(t, kid)}})
		if !errors.Is(err, service.ErrInvalidPartner) || !strings.Contains(err.Error(), "jwks.keys[1]") || !strings.Contains(err.Error(), `"`+kid+`"`) {
			t.Fatalf("rotation to a new key under kid %s (overlap %s): %v; want ErrInvalidPartner naming jwks.keys[1]", kid, overlap, err)
		}
		if got, _ := f.store.PartnerByClientID(ctx, p.ClientID); got.Version != p.Version {
			t.Fatalf("refused rotation stored: version %d, want %d", got.Version, p.Version)
		}
	}
	// The reported case: overlap 0, the new key under the same kid.
	refused(p, 0, "k1")
	refused(p, time.Hour, "k1")

	p, _, err = f.partners.Rotate(ctx, p.ClientID, service.RotateInput{JWKS: [][]byte{edKey(t, "k2")}})
	if err != nil {
		t.Fatal(err)
	}
	if service.CredentialValid(p, tokenOfK1, f.clock.Now()) {
		t.Fatal("k1's tokens still valid after a rotation with overlap 0")
	}
	// k1 ended, and stays listed as ended: back to k1 is still refused.
	refused(p, 0, "k1")
	if keys := service.PublicKeysOf(p, f.clock.Now()); len(keys) != 1 || keys[0].ID != "k2" {
		t.Fatalf("valid keys %+v, want k2 only", keys)
	}

	// k2 retiring in an overlap, then ended by the next rotation: refused too.
	if p, _, err = f.partners.Rotate(ctx, p.ClientID, service.RotateInput{Overlap: time.Hour, JWKS: [][]byte{edKey(t, "k3")}}); err != nil {
		t.Fatal(err)
	}
	refused(p, time.Hour, "k2")

	// A rotation to a secret: the method is the secret's, the keys ended.
	p, secret, err := f.partners.Rotate(ctx, p.ClientID, service.RotateInput{})
	if err != nil || secret == "" {
		t.Fatalf("rotation to a secret: %q, %v", secret, err)
	}
	if m := service.AuthMethod(p); m != service.AuthMethodSecret {
		t.Errorf("auth method after a rotation to a secret: %s", m)
	}
	if keys := service.PublicKeysOf(p, f.clock.Now()); len(keys) != 0 {
		t.Fatalf("keys still valid after a rotation to a secret: %+v", keys)
	}
	refused(p, 0, "k3")

	// Once no token of theirs can live, ended keys are forgotten.
	f.clock.Add(service.EndedKeyMemory + time.Second)
	p, _, err = f.partners.Rotate(ctx, p.ClientID, service.RotateInput{JWKS: [][]byte{edKey(t, "k1")}})
	if err != nil {
		t.Fatalf("k1 after %s: %v", service.EndedKeyMemory, err)
	}
	if len(p.Credentials) != 1 || p.Credentials[0].ID != "k1" || service.AuthMethod(p) != service.AuthMethodPrivateKey {
		t.Fatalf("credentials %+v", p.Credentials)
	}
}
