package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"strings"
	"testing"

	"github.com/credgate/credgate/internal/config"
)

func TestAccessConfig(t *testing.T) {
	t.Parallel()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	seed := base64.StdEncoding.EncodeToString(priv.Seed())
	good := config.Access{
		RateLimit: "100-M", AuthFailureLimit: "10-M", AuthFailureLimitPerClient: "60-M", RateLimitPrefix: "p",
		TokenVerifyKeys:   []string{seed, "pub:" + base64.RawURLEncoding.EncodeToString(pub)},
		TokenEndpointURLs: []string{"https://credgate.example.gov.cn/v1/oauth/token"},
	}
	if opts, err := tokenOptions(good); err != nil || len(opts) != 2 {
		t.Fatalf("token options: %d, %v", len(opts), err)
	}
	if opts, err := accessGatewayOptions(good, nil, slog.Default()); err != nil || len(opts) != 1 {
		t.Fatalf("gateway options: %d, %v", len(opts), err)
	}
	for name, c := range map[string]config.Access{
		"short seed":    {TokenVerifyKeys: []string{base64.StdEncoding.EncodeToString([]byte("short"))}},
		"bad pub":       {TokenVerifyKeys: []string{"pub:AAAA"}},
		"relative url":  {TokenEndpointURLs: []string{"/v1/oauth/token"}},
		"not base64":    {TokenVerifyKeys: []string{"not a key!"}},
		"garbage entry": {TokenVerifyKeys: []string{seed, "??"}},
	} {
		if _, err := tokenOptions(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, c := range map[string]config.Access{
		"bad rate":         {RateLimit: "lots", AuthFailureLimit: "10-M", AuthFailureLimitPerClient: "60-M"},
		"bad auth failure": {RateLimit: "100-M", AuthFailureLimit: "10-Y", AuthFailureLimitPerClient: "60-M"},
	} {
		if _, err := accessGatewayOptions(c, nil, slog.Default()); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A Redis URL that does not parse is refused without echoing it (it
	// may hold a password).
	_, err := openRedis("redis://:hunter2-password@[::1")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("bad Redis URL: %v", err)
	}
}
