package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/user"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/credgate/credgate/access"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/service"
)

// accessConfig is the partner access configuration of serve: quotas,
// throttles, token keys and the proxies trusted for client addresses.
type accessConfig struct {
	rateLimit        string
	authFailures     string
	authClientFails  string
	rateLimitPrefix  string
	tokenVerifyKeys  string
	tokenEndpointURL string
	trustedProxies   string
}

func (c *accessConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.rateLimit, "rate-limit", envOr("CREDGATE_RATE_LIMIT", gateway.DefaultRateLimit),
		"default request quota per partner, <requests>-<S|M|H|D>; a partner's own rate_limit overrides it (env CREDGATE_RATE_LIMIT)")
	fs.StringVar(&c.authFailures, "auth-failure-limit", envOr("CREDGATE_AUTH_FAILURE_LIMIT", gateway.DefaultAuthFailuresPerAddress),
		"failed client authentications allowed per address before the token endpoint answers 429 (env CREDGATE_AUTH_FAILURE_LIMIT)")
	fs.StringVar(&c.authClientFails, "auth-failure-limit-per-client", envOr("CREDGATE_AUTH_FAILURE_LIMIT_PER_CLIENT", gateway.DefaultAuthFailuresPerClient),
		"failed client authentications allowed per client id, from any address (env CREDGATE_AUTH_FAILURE_LIMIT_PER_CLIENT)")
	fs.StringVar(&c.rateLimitPrefix, "rate-limit-prefix", envOr("CREDGATE_RATE_LIMIT_PREFIX", "credgate:ratelimit"),
		"Redis key prefix of the shared rate limit counters (env CREDGATE_RATE_LIMIT_PREFIX)")
	fs.StringVar(&c.tokenVerifyKeys, "token-verify-keys", os.Getenv("CREDGATE_TOKEN_VERIFY_KEYS"),
		"comma-separated keys that verify but do not sign access tokens, during a signing key rotation: base64 Ed25519 seeds, or pub:<base64url public key> (env CREDGATE_TOKEN_VERIFY_KEYS)")
	fs.StringVar(&c.tokenEndpointURL, "token-endpoint-url", os.Getenv("CREDGATE_TOKEN_ENDPOINT_URL"),
		"comma-separated public URLs of POST /v1/oauth/token that private_key_jwt assertions may name as aud, besides \"credgate\" (env CREDGATE_TOKEN_ENDPOINT_URL)")
	fs.StringVar(&c.trustedProxies, "trusted-proxies", os.Getenv("CREDGATE_TRUSTED_PROXIES"),
		"comma-separated IPs/CIDRs of reverse proxies whose X-Forwarded-For names the client address used for throttling (env CREDGATE_TRUSTED_PROXIES)")
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// tokenOptions are the token service options: extra verification keys and
// the token endpoint URLs client assertions may name.
func (c *accessConfig) tokenOptions() ([]access.Option, error) {
	var opts []access.Option
	var keys []ed25519.PublicKey
	for i, k := range splitList(c.tokenVerifyKeys) {
		if pub, ok := strings.CutPrefix(k, "pub:"); ok {
			b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(pub, "="))
			if err != nil || len(b) != ed25519.PublicKeySize {
				return nil, fmt.Errorf("token verify key %d: pub: must be a base64url 32-byte Ed25519 public key", i+1)
			}
			keys = append(keys, ed25519.PublicKey(b))
			continue
		}
		priv, err := access.DecodeSeed(k)
		if err != nil {
			return nil, fmt.Errorf("token verify key %d: %w", i+1, err)
		}
		keys = append(keys, priv.Public().(ed25519.PublicKey))
	}
	if len(keys) > 0 {
		opts = append(opts, access.WithVerificationKeys(keys...))
	}
	urls := splitList(c.tokenEndpointURL)
	for _, u := range urls {
		if p, err := url.Parse(u); err != nil || p.Scheme == "" || p.Host == "" {
			return nil, fmt.Errorf("token endpoint URL %q is not an absolute URL", u)
		}
	}
	if len(urls) > 0 {
		opts = append(opts, access.WithAssertionAudiences(urls...))
	}
	return opts, nil
}

// gatewayOptions builds the rate limiter (over rdb, serve's one Redis
// client, when set) and the proxy trust.
func (c *accessConfig) gatewayOptions(rdb *redis.Client, logger *slog.Logger) ([]gateway.Option, error) {
	rl := []gateway.RateLimitOption{gateway.WithAuthFailureLimits(c.authFailures, c.authClientFails), gateway.WithRateLimitLogger(logger)}
	if rdb != nil {
		rl = append(rl, gateway.WithRedisStore(rdb, c.rateLimitPrefix))
	}
	limiter, err := gateway.NewRateLimiter(c.rateLimit, rl...)
	if err != nil {
		return nil, err
	}
	opts := []gateway.Option{gateway.WithRateLimiter(limiter)}
	if proxies := splitList(c.trustedProxies); len(proxies) > 0 {
		opts = append(opts, gateway.WithTrustedProxies(proxies...))
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
