package access

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/maypok86/otter/v2"
)

// Token errors. ErrTokenExpired and ErrTokenNotYetValid wrap
// ErrInvalidToken: such a token is invalid, but it was credgate's own (its
// signature verified), and its holder only needs a new one, or to wait
// for a replica's clock that runs ahead.
var (
	ErrMissingToken     = errors.New("missing bearer token")
	ErrInvalidToken     = errors.New("invalid token")
	ErrTokenExpired     = fmt.Errorf("%w: expired", ErrInvalidToken)
	ErrTokenNotYetValid = fmt.Errorf("%w: not yet valid (clock skew)", ErrInvalidToken)
)

// MaxTokenLen refuses oversized tokens (and client assertions) before any
// parsing: it also bounds how deeply their JSON can nest.
const MaxTokenLen = 4096

// TokenType is the typ header of credgate's access tokens (RFC 9068):
// explicit typing keeps any other JWT signed with the same key from being
// taken for an access token (RFC 8725 §3.11).
const TokenType = "at+jwt"

// DefaultTTL is how long issued tokens live unless WithTTL says otherwise.
const DefaultTTL = 15 * time.Minute

// maxVerified bounds the cache of verified tokens.
const maxVerified = 100_000

// Clock skew tolerated (docs/OPERATIONS.md, "Clocks").
const (
	// TokenLeeway is the skew tolerated on the exp, nbf and iat of
	// credgate's own tokens, and on the exp of client assertions. Tokens
	// are stamped by the replicas of one deployment, whose clocks NTP
	// keeps within milliseconds of each other; a wider margin would only
	// let tokens outlive their expiry.
	TokenLeeway = 5 * time.Second
	// AssertionSkew is the skew tolerated on the iat and nbf of partners'
	// client assertions: their clocks are theirs, and a minute is what
	// common OAuth servers allow. A partner whose clock ran seconds ahead
	// was refused as if its assertion were forged.
	AssertionSkew = 60 * time.Second
)

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
// It also verifies partners' client assertions (see VerifyAssertion).
//
// Key rotation: a replica signs with one key and verifies with it and any
// others it is given (WithVerificationKeys). To rotate, first give every
// replica the new key for verification, then make it the signing key with
// the old one kept for verification, and drop the old one once the last
// token it signed has expired (the token TTL). JWKS publishes every key a
// replica verifies with.
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

	// verified holds tokens already verified, keyed by their SHA-256,
	// until they expire, so the signature is checked once per token and
	// not once per request.
	verified *otter.Cache[[32]byte, verifiedToken]
}

type verifiedToken struct {
	claims  Claims
	expires time.Time
}

// Option configures Tokens.
type Option func(*Tokens)

// WithTTL sets how long issued tokens live (default DefaultTTL).
func WithTTL(d time.Duration) Option { return func(t *Tokens) { t.ttl = d } }

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) Option { return func(t *Tokens) { t.now = now } }

// WithVerificationKeys adds keys that verify tokens but do not sign them:
// the previous key after a rotation, or the next one before it.
func WithVerificationKeys(keys ...ed25519.PublicKey) Option {
	return func(t *Tokens) {
		for _, k := range keys {
			t.verify[KeyID(k)] = k
		}
	}
}

// WithAssertionAudiences adds the token endpoint URLs (as partners reach
// them, e.g. https://credgate.example.gov.cn/v1/oauth/token) that a
// client assertion's aud may name besides the issuer identifier.
func WithAssertionAudiences(urls ...string) Option {
	return func(t *Tokens) { t.assertionAudiences = append(t.assertionAudiences, urls...) }
}

// KeyID is the kid of an Ed25519 public key: derived from the key, so every
// replica holding it agrees.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:8])
}

// DecodeSeed decodes a token signing key: a 32-byte Ed25519 seed in
// standard or unpadded URL-safe base64, surrounding space ignored.
func DecodeSeed(s string) (ed25519.PrivateKey, error) {
	s = strings.TrimSpace(s)
	seed, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		seed, err = base64.RawURLEncoding.DecodeString(s)
	}
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, errors.New("token key must be a base64 32-byte Ed25519 seed")
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// NewTokens returns a token service signing with key.
func NewTokens(key ed25519.PrivateKey, opts ...Option) *Tokens {
	pub := key.Public().(ed25519.PublicKey)
	t := &Tokens{
		key: key, kid: KeyID(pub), verify: map[string]ed25519.PublicKey{KeyID(pub): pub},
		issuer: "credgate", audience: "credgate", ttl: DefaultTTL, now: time.Now,
	}
	for _, o := range opts {
		o(t)
	}
	t.assertionAudiences = append([]string{t.issuer}, t.assertionAudiences...)
	t.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(t.issuer), jwt.WithAudience(t.audience),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithTimeFunc(t.now), jwt.WithLeeway(TokenLeeway),
		// Refuse non-canonical base64: one token, one encoding.
		jwt.WithStrictDecoding(),
	)
	// Entries live until their token expires, by the service's clock;
	// the size bound keeps a flood of valid tokens from growing memory.
	t.verified = otter.Must(&otter.Options[[32]byte, verifiedToken]{
		MaximumSize: maxVerified,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[[32]byte, verifiedToken]) time.Duration {
			return e.Value.expires.Sub(t.now())
		}),
	})
	t.jwks = t.buildJWKS()
	return t
}

// KeyID is the id of the current signing key.
func (t *Tokens) KeyID() string { return t.kid }

// TTL is how long issued tokens live.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// Now is the service's clock: the time tokens and credentials are judged at.
func (t *Tokens) Now() time.Time { return t.now() }

// Issue returns a signed access token for the client clientID acting in
// role, issued for its credential credID.
func (t *Tokens) Issue(clientID, role, credID string) (string, error) {
	now := t.now()
	claims := Claims{
		Role: role,
		Cred: credID,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: t.issuer, Subject: clientID, Audience: jwt.ClaimStrings{t.audience},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)), ID: uuid.NewString(),
		},
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = t.kid
	tok.Header["typ"] = TokenType
	s, err := tok.SignedString(t.key)
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	return s, nil
}

// Verify checks a token's signature, algorithm, type, issuer, audience and
// validity period, and returns its claims. A token that credgate signed and
// that is otherwise valid but past its expiry is ErrTokenExpired; one
// stamped more than TokenLeeway ahead of this replica's clock (iat or nbf)
// is ErrTokenNotYetValid; every other failure is ErrInvalidToken, so
// neither is told apart from a forged one before its signature has been
// verified.
func (t *Tokens) Verify(raw string) (Claims, error) {
	if raw == "" {
		return Claims{}, ErrMissingToken
	}
	if len(raw) > MaxTokenLen {
		return Claims{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidToken, MaxTokenLen)
	}
	sum := sha256.Sum256([]byte(raw))
	if v, ok := t.verified.GetIfPresent(sum); ok && t.now().Before(v.expires) {
		return v.claims, nil
	}
	var claims Claims
	_, err := t.parser.ParseWithClaims(raw, &claims, func(tok *jwt.Token) (any, error) {
		if typ, _ := tok.Header["typ"].(string); !strings.EqualFold(typ, TokenType) && !strings.EqualFold(typ, "application/"+TokenType) {
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
		if onlyExpired(err) {
			return Claims{}, fmt.Errorf("%w: %w", ErrTokenExpired, err)
		}
		if onlyNotYetValid(err) {
			return Claims{}, fmt.Errorf("%w: stamped %s ahead of this server's clock: %w", ErrTokenNotYetValid, ahead(claims.RegisteredClaims, t.now()), err)
		}
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if claims.Subject == "" || claims.Cred == "" {
		return Claims{}, fmt.Errorf("%w: no subject or credential", ErrInvalidToken)
	}
	t.verified.Set(sum, verifiedToken{claims: claims, expires: claims.ExpiresAt.Time})
	return claims, nil
}

// onlyExpired reports whether the parser refused a token for its expiry
// alone. golang-jwt validates claims only after the signature, so such a
// token is one credgate signed.
func onlyExpired(err error) bool {
	if !errors.Is(err, jwt.ErrTokenExpired) {
		return false
	}
	// The validator joins every claim it refuses: expiry must be alone.
	for _, other := range []error{jwt.ErrTokenSignatureInvalid, jwt.ErrTokenUnverifiable, jwt.ErrTokenMalformed,
		jwt.ErrTokenInvalidIssuer, jwt.ErrTokenInvalidAudience, jwt.ErrTokenNotValidYet, jwt.ErrTokenUsedBeforeIssued,
		jwt.ErrTokenRequiredClaimMissing, jwt.ErrTokenInvalidSubject, jwt.ErrTokenInvalidId} {
		if errors.Is(err, other) {
			return false
		}
	}
	return true
}

// onlyNotYetValid reports whether the parser refused a token (or a client
// assertion) only because its iat or nbf is ahead of the clock, past the
// leeway: after its signature verified, so it is the signer's clock that
// runs ahead, not a forgery.
func onlyNotYetValid(err error) bool {
	if !errors.Is(err, jwt.ErrTokenNotValidYet) && !errors.Is(err, jwt.ErrTokenUsedBeforeIssued) {
		return false
	}
	for _, other := range []error{jwt.ErrTokenSignatureInvalid, jwt.ErrTokenUnverifiable, jwt.ErrTokenMalformed,
		jwt.ErrTokenInvalidIssuer, jwt.ErrTokenInvalidAudience, jwt.ErrTokenExpired,
		jwt.ErrTokenRequiredClaimMissing, jwt.ErrTokenInvalidSubject, jwt.ErrTokenInvalidId} {
		if errors.Is(err, other) {
			return false
		}
	}
	return true
}

// ahead is how far the later of a token's iat and nbf is ahead of now, to
// the second, for the message that names the skew.
func ahead(c jwt.RegisteredClaims, now time.Time) time.Duration {
	var at time.Time
	if c.IssuedAt != nil {
		at = c.IssuedAt.Time
	}
	if c.NotBefore != nil && c.NotBefore.After(at) {
		at = c.NotBefore.Time
	}
	return at.Sub(now).Round(time.Second)
}

// buildJWKS serialises the verification keys as a JWK Set, the signing
// key first and the others in kid order.
func (t *Tokens) buildJWKS() []byte {
	kids := make([]string, 0, len(t.verify))
	for kid := range t.verify {
		if kid != t.kid {
			kids = append(kids, kid)
		}
	}
	slices.Sort(kids)
	kids = append([]string{t.kid}, kids...)
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(kids))}
	for _, kid := range kids {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: t.verify[kid], KeyID: kid, Algorithm: "EdDSA", Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		// Ed25519 public keys always marshal; a failure is a programming error.
		panic(fmt.Sprintf("access: JWKS: %v", err))
	}
	return b
}

// JWKS returns the JSON Web Key Set (RFC 7517) of every key that verifies
// access tokens.
func (t *Tokens) JWKS() []byte { return t.jwks }
