package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/url"
	"os/user"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/credgate/credgate/access"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/config"
	"github.com/credgate/credgate/service"
)

// tokenOptions are the token service options of the access settings: extra
// verification keys and the token endpoint URLs client assertions may name.
func tokenOptions(c config.Access) ([]access.Option, error) {
	var opts []access.Option
	var keys []ed25519.PublicKey
	for i, k := range c.TokenVerifyKeys {
		if pub, ok := strings.CutPrefix(k, "pub:"); ok {
			b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(pub, "="))
			if err != nil || len(b) != ed25519.PublicKeySize {
				return nil, fmt.Errorf("access.token_verify_keys: key %d: pub: must be a base64url 32-byte Ed25519 public key", i+1)
			}
			keys = append(keys, ed25519.PublicKey(b))
			continue
		}
		priv, err := access.DecodeSeed(k)
		if err != nil {
			return nil, fmt.Errorf("access.token_verify_keys: key %d: %w", i+1, err)
		}
		keys = append(keys, priv.Public().(ed25519.PublicKey))
	}
	if len(keys) > 0 {
		opts = append(opts, access.WithVerificationKeys(keys...))
	}
	for _, u := range c.TokenEndpointURLs {
		if p, err := url.Parse(u); err != nil || p.Scheme == "" || p.Host == "" {
			return nil, fmt.Errorf("access.token_endpoint_urls: %q is not an absolute URL", u)
		}
	}
	if len(c.TokenEndpointURLs) > 0 {
		opts = append(opts, access.WithAssertionAudiences(c.TokenEndpointURLs...))
	}
	return opts, nil
}

// accessGatewayOptions builds the rate limiter (over rdb, serve's one
// Redis client, when set) and the proxy trust.
func accessGatewayOptions(c config.Access, rdb *redis.Client, logger *slog.Logger) ([]gateway.Option, error) {
	rl := []gateway.RateLimitOption{gateway.WithAuthFailureLimits(c.AuthFailureLimit, c.AuthFailureLimitPerClient), gateway.WithRateLimitLogger(logger)}
	if rdb != nil {
		rl = append(rl, gateway.WithRedisStore(rdb, c.RateLimitPrefix))
	}
	limiter, err := gateway.NewRateLimiter(c.RateLimit, rl...)
	if err != nil {
		return nil, err
	}
	opts := []gateway.Option{gateway.WithRateLimiter(limiter)}
	if len(c.TrustedProxies) > 0 {
		opts = append(opts, gateway.WithTrustedProxies(c.TrustedProxies...))
	}
	return opts, nil
}

// localActor is the actor of administrative acts done from this command
// line (imports): the operating system user.
func localActor() service.Actor {
	name := "cli"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = "cli:" + u.Username
	}
	return service.Actor{ClientID: name, Role: service.RoleAdmin}
}
