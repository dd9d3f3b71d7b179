package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"strings"
	"testing"
)

func TestAccessConfig(t *testing.T) {
	t.Parallel()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	seed := base64.StdEncoding.EncodeToString(priv.Seed())
	good := accessConfig{
		rateLimit: "100-M", authFailures: "10-M", authClientFails: "60-M", rateLimitPrefix: "p",
		tokenVerifyKeys:  seed + ", pub:" + base64.RawURLEncoding.EncodeToString(pub),
		tokenEndpointURL: "https://credgate.example.gov.cn/v1/oauth/token",
	}
	if opts, err := good.tokenOptions(); err != nil || len(opts) != 2 {
		t.Fatalf("token options: %d, %v", len(opts), err)
	}
	if opts, err := good.gatewayOptions(nil, slog.Default()); err != nil || len(opts) != 1 {
		t.Fatalf("gateway options: %d, %v", len(opts), err)
	}
	for name, c := range map[string]accessConfig{
		"short seed":    {tokenVerifyKeys: base64.StdEncoding.EncodeToString([]byte("short"))},
		"bad pub":       {tokenVerifyKeys: "pub:AAAA"},
		"relative url":  {tokenEndpointURL: "/v1/oauth/token"},
		"not base64":    {tokenVerifyKeys: "not a key!"},
		"garbage entry": {tokenVerifyKeys: seed + ",??"},
	} {
		if _, err := c.tokenOptions(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, c := range map[string]accessConfig{
		"bad rate":         {rateLimit: "lots", authFailures: "10-M", authClientFails: "60-M"},
		"bad auth failure": {rateLimit: "100-M", authFailures: "10-Y", authClientFails: "60-M"},
	} {
		if _, err := c.gatewayOptions(nil, slog.Default()); err == nil {
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
