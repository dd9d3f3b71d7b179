package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
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
	// ErrInvalidAssertion: a client assertion (private_key_jwt) is
	// malformed, forged, expired, replayed or for another audience. It
	// answers as invalid_client, like a wrong secret.
	ErrInvalidAssertion = errors.New("invalid client assertion")
)

// maxTokenLen refuses oversized tokens (and client assertions) before any
// parsing: it also bounds how deeply their JSON can nest.
const maxTokenLen = 4096

// accessTokenType is the typ header of credgate's access tokens (RFC 9068):
// explicit typing keeps any other JWT signed with the same key from being
// taken for an access token (RFC 8725 §3.11).
const accessTokenType = "at+jwt"

// ClientAssertionType is the client_assertion_type of private_key_jwt
// client authentication (RFC 7523 §2.2).
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// MaxAssertionLifetime bounds how far in the future a client assertion may
// expire: assertions are single-use and short-lived, so a stolen one is
// worth little.
const MaxAssertionLifetime = 10 * time.Minute

// Claims are the claims of a credgate access token.
type Claims struct {
	Role string `json:"role"`
	// Cred is the credential the token was issued for; the token stops
	// working when that credential is rotated out or the partner revoked.
	Cred string `json:"cred"`
	jwt.RegisteredClaims
}

// Tokens issues and verifies credgate's access tokens: short-lived JWTs
// signed with Ed25519 (EdDSA), carrying the key id so keys can rotate.
//
// Key rotation: a replica signs with one key and verifies with it and any
// others it is given (WithVerificationKeys). To rotate, first give every
// replica the new key for verification, then make it the signing key with
// the old one kept for verification, and drop the old one once the last
// token it signed has expired (the token TTL). GET /.well-known/jwks.json
// publishes every key a replica verifies with.
type Tokens struct {
	key      ed25519.PrivateKey
	kid      string
	verify   map[string]ed25519.PublicKey
	issuer   string
	audience string
	// assertionAudiences are the aud values a client assertion may carry:
	// the issuer identifier and the configured token endpoint URLs.
	assertionAudiences []string
	ttl                time.Duration
	now                func() time.Time
	parser             *jwt.Parser
	jwks               []byte

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

// WithVerificationKeys adds keys that verify tokens but do not sign them:
// the previous key after a rotation, or the next one before it.
func WithVerificationKeys(keys ...ed25519.PublicKey) TokensOption {
	return func(t *Tokens) {
		for _, k := range keys {
			t.verify[KeyID(k)] = k
		}
	}
}

// WithAssertionAudiences adds the token endpoint URLs (as partners reach
// them, e.g. https://credgate.example.gov.cn/v1/oauth/token) that a
// client assertion's aud may name besides the issuer identifier.
func WithAssertionAudiences(urls ...string) TokensOption {
	return func(t *Tokens) { t.assertionAudiences = append(t.assertionAudiences, urls...) }
}

// KeyID is the kid of an Ed25519 public key: derived from the key, so every
// replica holding it agrees.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:8])
}

// NewTokens returns a token service signing with key.
func NewTokens(key ed25519.PrivateKey, opts ...TokensOption) *Tokens {
	pub := key.Public().(ed25519.PublicKey)
	t := &Tokens{
		key: key, kid: KeyID(pub), verify: map[string]ed25519.PublicKey{KeyID(pub): pub},
		issuer: "credgate", audience: "credgate",
		ttl: 15 * time.Minute, now: time.Now, verified: map[[32]byte]verifiedToken{},
	}
	for _, o := range opts {
		o(t)
	}
	t.assertionAudiences = append([]string{t.issuer}, t.assertionAudiences...)
	t.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(t.issuer), jwt.WithAudience(t.audience),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithTimeFunc(t.now), jwt.WithLeeway(5*time.Second),
		// Refuse non-canonical base64: one token, one encoding.
		jwt.WithStrictDecoding(),
	)
	t.jwks = t.buildJWKS()
	return t
}

// KeyID is the id of the current signing key.
func (t *Tokens) KeyID() string { return t.kid }

// TTL is how long issued tokens live.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// Issue returns a signed access token for p, issued for the credential
// credID.
func (t *Tokens) Issue(p service.Partner, credID string) (string, error) {
	now := t.now()
	claims := Claims{
		Role: string(p.Role),
		Cred: credID,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: t.issuer, Subject: p.ClientID, Audience: jwt.ClaimStrings{t.audience},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)), ID: uuid.NewString(),
		},
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = t.kid
	tok.Header["typ"] = accessTokenType
	return tok.SignedString(t.key)
}

// Verify checks a token's signature, algorithm, type, issuer, audience and
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
		if typ, _ := tok.Header["typ"].(string); !strings.EqualFold(typ, accessTokenType) && !strings.EqualFold(typ, "application/"+accessTokenType) {
			return nil, errors.New("not an access token (typ)")
		}
		if _, ok := tok.Header["crit"]; ok {
			return nil, errors.New("critical header parameters are not supported")
		}
		kid, _ := tok.Header["kid"].(string)
		key, ok := t.verify[kid]
		if !ok {
			return nil, errors.New("unknown key id")
		}
		return key, nil
	})
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if claims.Subject == "" || claims.Cred == "" {
		return Claims{}, fmt.Errorf("%w: no subject or credential", ErrInvalidToken)
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

// jwk is an Ed25519 public key as RFC 8037 writes it.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

func (t *Tokens) buildJWKS() []byte {
	keys := make([]jwk, 0, len(t.verify))
	for kid, pub := range t.verify {
		keys = append(keys, jwk{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: kid, Alg: "EdDSA", Use: "sig"})
	}
	// The signing key first, the others in a stable order.
	slices.SortFunc(keys, func(a, b jwk) int {
		switch {
		case a.Kid == t.kid:
			return -1
		case b.Kid == t.kid:
			return 1
		}
		return strings.Compare(a.Kid, b.Kid)
	})
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return b
}

// JWKS returns the JSON Web Key Set (RFC 7517) of every key that verifies
// access tokens.
func (t *Tokens) JWKS() []byte { return t.jwks }

// AssertionClientID reads the client id a client assertion claims (its
// iss), without verifying it: the keys that verify it are that client's.
func AssertionClientID(raw string) (string, error) {
	if raw == "" || len(raw) > maxTokenLen {
		return "", fmt.Errorf("%w: empty or longer than %d bytes", ErrInvalidAssertion, maxTokenLen)
	}
	var claims jwt.RegisteredClaims
	if _, _, err := jwt.NewParser(jwt.WithStrictDecoding()).ParseUnverified(raw, &claims); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidAssertion, err)
	}
	if claims.Issuer == "" || claims.Issuer != claims.Subject || len(claims.Issuer) > service.MaxClientIDLen {
		return "", fmt.Errorf("%w: iss and sub must both be the client id", ErrInvalidAssertion)
	}
	return claims.Issuer, nil
}

// Assertion is a verified client assertion.
type Assertion struct {
	ClientID string
	KeyID    string // the credential (registered key) that signed it
	JTI      string
	Expires  time.Time
}

// VerifyAssertion verifies a private_key_jwt client assertion (RFC 7523
// §3) for clientID against the client's registered keys: signature by one
// of them with the algorithm that key is pinned to, iss = sub = clientID,
// aud naming credgate, an exp at most MaxAssertionLifetime ahead, and a jti.
// Replay of the jti is checked by the caller, which can share that across
// replicas.
func (t *Tokens) VerifyAssertion(raw, clientID string, keys []service.PublicKey) (Assertion, error) {
	if len(raw) > maxTokenLen {
		return Assertion{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidAssertion, maxTokenLen)
	}
	algs := make([]string, 0, len(keys))
	for _, k := range keys {
		algs = append(algs, k.Alg)
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods(algs),
		jwt.WithIssuer(clientID), jwt.WithSubject(clientID), jwt.WithAudience(t.assertionAudiences...),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithTimeFunc(t.now), jwt.WithLeeway(5*time.Second), jwt.WithStrictDecoding(),
	)
	var used string
	var claims jwt.RegisteredClaims
	_, err := parser.ParseWithClaims(raw, &claims, func(tok *jwt.Token) (any, error) {
		if _, ok := tok.Header["crit"]; ok {
			return nil, errors.New("critical header parameters are not supported")
		}
		kid, _ := tok.Header["kid"].(string)
		var set jwt.VerificationKeySet
		for _, k := range keys {
			// Each key verifies only with the algorithm it is pinned to.
			if (kid == "" || k.ID == kid) && k.Alg == tok.Method.Alg() {
				set.Keys = append(set.Keys, k.Key)
				used = k.ID
			}
		}
		if len(set.Keys) == 0 {
			return nil, errors.New("no registered key matches kid and alg")
		}
		if len(set.Keys) > 1 {
			used = "" // found below
		}
		return set, nil
	})
	if err != nil {
		return Assertion{}, fmt.Errorf("%w: %w", ErrInvalidAssertion, err)
	}
	if used == "" {
		used = t.matchingKey(raw, keys)
	}
	now := t.now()
	if claims.ExpiresAt.Time.After(now.Add(MaxAssertionLifetime)) {
		return Assertion{}, fmt.Errorf("%w: exp more than %s ahead", ErrInvalidAssertion, MaxAssertionLifetime)
	}
	if claims.ID == "" || len(claims.ID) > 200 {
		return Assertion{}, fmt.Errorf("%w: jti is required (at most 200 characters)", ErrInvalidAssertion)
	}
	return Assertion{ClientID: clientID, KeyID: used, JTI: claims.ID, Expires: claims.ExpiresAt.Time}, nil
}

// matchingKey finds which of several keys signed an already verified
// assertion without a kid.
func (t *Tokens) matchingKey(raw string, keys []service.PublicKey) string {
	for _, k := range keys {
		p := jwt.NewParser(jwt.WithValidMethods([]string{k.Alg}), jwt.WithoutClaimsValidation(), jwt.WithStrictDecoding())
		if _, err := p.Parse(raw, func(*jwt.Token) (any, error) { return k.Key, nil }); err == nil {
			return k.ID
		}
	}
	return ""
}

// Context keys set by the middleware.
const (
	ctxRequestID = "credgate.request_id"
	ctxLogger    = "credgate.logger"
	ctxCaller    = "credgate.caller"
	ctxPartner   = "credgate.partner"
)

// authenticate requires a valid bearer token of an active partner, issued
// for a credential that is still valid, and puts the caller in the
// context. Revocation and rotation take effect within the partner cache's
// TTL, even for unexpired tokens.
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
	if !service.CredentialValid(p, claims.Cred, s.tokens.now()) || claims.Role != string(p.Role) {
		fail(c, problem(http.StatusUnauthorized, "invalid_token", "Invalid token", "the credential behind this token is no longer active"))
		return
	}
	c.Set(ctxCaller, service.CallerOf(p))
	c.Set(ctxPartner, p)
	c.Next()
}

// asActor makes the caller the actor of the administrative acts its
// request performs, so that service records who did them.
func (s *Server) asActor(c *gin.Context) {
	caller := callerOf(c)
	c.Request = c.Request.WithContext(service.WithActor(c.Request.Context(), service.Actor{ClientID: caller.ClientID, Role: caller.Role}))
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

// token is the OAuth 2.0 client credentials grant (RFC 6749 §4.4). The
// client authenticates with its secret (HTTP Basic, or form fields) or
// with a signed client assertion (private_key_jwt, RFC 7523). Failed
// attempts are throttled per client and per address.
func (s *Server) token(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	oauthProblem := func(status int, code, title, detail string) {
		p := problem(status, code, title, detail)
		p.OAuthError = code
		fail(c, p)
	}
	if !strings.HasPrefix(c.ContentType(), "application/x-www-form-urlencoded") {
		oauthProblem(http.StatusBadRequest, "invalid_request", "Invalid token request", "send application/x-www-form-urlencoded")
		return
	}
	if err := c.Request.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			fail(c, decodeProblem(err))
			return
		}
		oauthProblem(http.StatusBadRequest, "invalid_request", "Invalid token request", "malformed form")
		return
	}
	form := c.Request.PostForm
	if gt := form.Get("grant_type"); gt != "client_credentials" {
		oauthProblem(http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant type", "grant_type must be client_credentials")
		return
	}
	if s.limits.throttled(c, "") {
		return
	}
	ctx := c.Request.Context()
	id, secret, basic := c.Request.BasicAuth()
	assertion := form.Get("client_assertion")
	if !basic {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	if assertion != "" || form.Get("client_assertion_type") != "" {
		if basic || secret != "" {
			// RFC 6749 §2.3: one authentication method per request.
			oauthProblem(http.StatusBadRequest, "invalid_request", "Invalid token request", "authenticate with a secret or an assertion, not both")
			return
		}
		if form.Get("client_assertion_type") != ClientAssertionType {
			oauthProblem(http.StatusBadRequest, "invalid_request", "Invalid token request", "client_assertion_type must be "+ClientAssertionType)
			return
		}
		claimed, err := AssertionClientID(assertion)
		if err != nil || (id != "" && id != claimed) {
			s.limits.recordFailure(c, "")
			s.authFailed(c, id, "malformed assertion")
			return
		}
		id = claimed
	} else if id == "" || secret == "" || len(id) > service.MaxClientIDLen || len(secret) > 512 {
		s.limits.recordFailure(c, "")
		s.authFailed(c, id, "missing credentials")
		return
	}
	if s.limits.throttled(c, id) {
		return
	}
	var (
		p      service.Partner
		credID string
		err    error
	)
	if assertion != "" {
		p, credID, err = s.verifyAssertion(ctx, id, assertion)
	} else {
		p, credID, err = s.partners.Authenticate(ctx, id, secret)
	}
	if errors.Is(err, service.ErrInvalidClient) || errors.Is(err, ErrInvalidAssertion) {
		s.limits.recordFailure(c, id)
		s.authFailed(c, id, "invalid credentials")
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	tok, err := s.tokens.Issue(p, credID)
	if err != nil {
		fail(c, err)
		return
	}
	// The log names who got a token and for which credential, never the
	// token, the secret or the assertion.
	s.logger.InfoContext(ctx, "access token issued", "request_id", c.GetString(ctxRequestID), "client_id", p.ClientID,
		"credential", credID, "kid", s.tokens.KeyID())
	c.JSON(http.StatusOK, gin.H{"access_token": tok, "token_type": "Bearer", "expires_in": int(s.tokens.TTL().Seconds())})
}

// authFailed answers a failed client authentication. The client id is
// logged only as far as it is a plausible id: a caller that pasted its
// secret there must not find it in the logs.
func (s *Server) authFailed(c *gin.Context, clientID, why string) {
	if len(clientID) > service.MaxClientIDLen || strings.ContainsAny(clientID, ":= \t\r\n") {
		clientID = "(implausible)"
	}
	s.logger.WarnContext(c.Request.Context(), "client authentication failed", "request_id", c.GetString(ctxRequestID),
		"client_id", clientID, "remote", c.ClientIP(), "reason", why)
	fail(c, service.ErrInvalidClient)
}

// verifyAssertion authenticates a partner by a client assertion and
// refuses a replayed one.
func (s *Server) verifyAssertion(ctx context.Context, clientID, assertion string) (service.Partner, string, error) {
	p, keys, err := s.partners.AssertionKeys(ctx, clientID)
	if err != nil {
		return service.Partner{}, "", err
	}
	a, err := s.tokens.VerifyAssertion(assertion, clientID, keys)
	if err != nil {
		return service.Partner{}, "", err
	}
	first, err := s.limits.firstUse(ctx, "assertion:"+clientID+":"+a.JTI, a.Expires.Add(5*time.Second))
	if err != nil {
		return service.Partner{}, "", err
	}
	if !first {
		return service.Partner{}, "", fmt.Errorf("%w: jti already used", ErrInvalidAssertion)
	}
	return p, a.KeyID, nil
}

// jwksHandler serves GET /.well-known/jwks.json: the public keys that verify
// access tokens, for resource servers and partners that check tokens
// themselves.
func (s *Server) jwksHandler(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=300")
	c.Data(http.StatusOK, "application/jwk-set+json", s.tokens.JWKS())
}
