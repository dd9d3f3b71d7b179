package gateway_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"github.com/credgate/credgate/access"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// benchPartner is what every gateway benchmark sets up before it sends a
// request: a partner allowed action with a quota no run reaches, its
// credential authenticated, and the token issuer of the server.
type benchPartner struct {
	partners *service.Partners
	tokens   *access.Tokens
	partner  service.Partner
	cred     string
}

func newBenchPartner(b *testing.B, st service.PartnerStore, cat *policy.Catalog, action, rateLimit string) benchPartner {
	b.Helper()
	ctx := context.Background()
	partners := service.NewPartners(st, cat)
	p, secret, err := partners.Create(ctx, service.NewPartnerInput{Name: "bench", Actions: []string{action}, RateLimit: rateLimit})
	if err != nil {
		b.Fatal(err)
	}
	_, cred, err := partners.Authenticate(ctx, p.ClientID, secret)
	if err != nil {
		b.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	return benchPartner{partners: partners, tokens: access.NewTokens(key), partner: p, cred: cred}
}
