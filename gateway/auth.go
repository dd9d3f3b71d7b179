package gateway

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/credgate/credgate/service"
)

// Token errors.
var (
	ErrMissingToken = errors.New("missing bearer token")
	ErrInvalidToken = errors.New("invalid token")
)

// maxTokenLen refuses oversized tokens before any parsing.
const maxTokenLen = 4096

// Claims are the claims of a credgate access token.
type Claims struct {
	Role string `json:"role"`
	jwt.RegisteredClaims
}

// Tokens issues and verifies credgate's access tokens: short-lived JWTs
// signed with Ed25519 (EdDSA), carrying the key id so keys can rotate.
type Tokens struct {
	key      ed25519.PrivateKey
	kid      string
	issuer   string
	audience string
	ttl      time.Duration
	now      func() time.Time
	parser   *jwt.Parser

	// verified caches tokens already verified, keyed by their SHA-256,
	// until they expire, so the signature is checked once per token and
	// not once per request.
	mu       sync.Mutex
	verified map[[32]byte]verifiedToken
}

type verifiedToken struct {
	claims  Claims
	expires time.Time
}

// TokensOption configures Tokens.
type TokensOption func(*Tokens)

// WithTokenTTL sets how long issued tokens live (default 15 minutes).
func WithTokenTTL(d time.Duration) TokensOption { return func(t *Tokens) { t.ttl = d } }

// WithTokenClock sets the clock (tests).
func WithTokenClock(now func() time.Time) TokensOption { return func(t *Tokens) { t.now = now } }

// NewTokens returns a token service signing with key. The key id is derived
// from the public key, so every replica holding the key agrees on it.
func NewTokens(key ed25519.PrivateKey, opts ...TokensOption) *Tokens {
	pub := key.Public().(ed25519.PublicKey)
	sum := sha256.Sum256(pub)
	t := &Tokens{
		key: key, kid: base64.RawURLEncoding.EncodeToString(sum[:8]), issuer: "credgate", audience: "credgate",
		ttl: 15 * time.Minute, now: time.Now, verified: map[[32]byte]verifiedToken{},
	}
	for _, o := range opts {
		o(t)
	}
	t.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(t.issuer), jwt.WithAudience(t.audience),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithTimeFunc(t.now), jwt.WithLeeway(5*time.Second),
	)
	return t
}

// KeyID is the id of the current signing key.
func (t *Tokens) KeyID() string { return t.kid }

// TTL is how long issued tokens live.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// Issue returns a signed access token for p.
func (t *Tokens) Issue(p service.Partner) (string, error) {
	now := t.now()
	claims := Claims{
		Role: string(p.Role),
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: t.issuer, Subject: p.ClientID, Audience: jwt.ClaimStrings{t.audience},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)), ID: uuid.NewString(),
		},
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = t.kid
	return tok.SignedString(t.key)
}

// Verify checks a token's signature, algorithm, issuer, audience and
// validity period, and returns its claims.
func (t *Tokens) Verify(raw string) (Claims, error) {
	if raw == "" {
		return Claims{}, ErrMissingToken
	}
	if len(raw) > maxTokenLen {
		return Claims{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidToken, maxTokenLen)
	}
	sum := sha256.Sum256([]byte(raw))
	now := t.now()
	t.mu.Lock()
	v, ok := t.verified[sum]
	t.mu.Unlock()
	if ok && now.Before(v.expires) {
		return v.claims, nil
	}
	var claims Claims
	_, err := t.parser.ParseWithClaims(raw, &claims, func(tok *jwt.Token) (any, error) {
		if kid, _ := tok.Header["kid"].(string); kid != t.kid {
			return nil, fmt.Errorf("unknown key id")
		}
		return t.key.Public(), nil
	})
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if claims.Subject == "" {
		return Claims{}, fmt.Errorf("%w: no subject", ErrInvalidToken)
	}
	t.mu.Lock()
	if len(t.verified) >= 100_000 {
		for k, v := range t.verified {
			if !now.Before(v.expires) {
				delete(t.verified, k)
			}
		}
		if len(t.verified) >= 100_000 {
			clear(t.verified)
		}
	}
	t.verified[sum] = verifiedToken{claims: claims, expires: claims.ExpiresAt.Time}
	t.mu.Unlock()
	return claims, nil
}

// Context keys set by the middleware.
const (
	ctxRequestID = "credgate.request_id"
	ctxCaller    = "credgate.caller"
)

// authenticate requires a valid bearer token of an active partner and puts
// the caller in the context. Revocation takes effect within the partner
// cache's TTL, even for unexpired tokens.
func (s *Server) authenticate(c *gin.Context) {
	h := c.GetHeader("Authorization")
	raw, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		raw, ok = strings.CutPrefix(h, "bearer ")
	}
	if !ok || strings.TrimSpace(raw) == "" {
		fail(c, problem(http.StatusUnauthorized, "missing_token", "Missing bearer token",
			"send Authorization: Bearer <token> from POST /v1/oauth/token"))
		return
	}
	claims, err := s.tokens.Verify(strings.TrimSpace(raw))
	if err != nil {
		fail(c, problem(http.StatusUnauthorized, "invalid_token", "Invalid token", "the token is malformed, forged or expired"))
		return
	}
	p, err := s.partners.Active(c.Request.Context(), claims.Subject)
	if errors.Is(err, service.ErrInvalidClient) {
		fail(c, problem(http.StatusUnauthorized, "invalid_token", "Invalid token", "the credential behind this token is no longer active"))
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	c.Set(ctxCaller, service.Caller{ClientID: p.ClientID, Role: p.Role, Actions: p.Actions})
	c.Next()
}

// require allows only the given roles.
func require(roles ...service.Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		caller := callerOf(c)
		for _, r := range roles {
			if caller.Role == r {
				c.Next()
				return
			}
		}
		fail(c, problem(http.StatusForbidden, "forbidden", "Forbidden", "this credential's role may not do this"))
	}
}

func callerOf(c *gin.Context) service.Caller {
	v, _ := c.Get(ctxCaller)
	caller, _ := v.(service.Caller)
	return caller
}
