package access

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrInvalidAssertion: a client assertion (private_key_jwt) is malformed,
// forged, expired, replayed or for another audience. It answers as
// invalid_client, like a wrong secret.
var ErrInvalidAssertion = errors.New("invalid client assertion")

// ErrAssertionNotYetValid: a client assertion signed by one of the
// client's keys, otherwise valid, is stamped (iat or nbf) more than
// AssertionSkew ahead of credgate's clock: the client's clock runs ahead.
// It wraps ErrInvalidAssertion; the client proved its key, so it is not a
// guess, and the gateway says what is wrong.
var ErrAssertionNotYetValid = fmt.Errorf("%w: not yet valid (clock skew)", ErrInvalidAssertion)

// ClientAssertionType is the client_assertion_type of private_key_jwt
// client authentication (RFC 7523 §2.2).
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// MaxAssertionLifetime bounds how far in the future a client assertion may
// expire: assertions are single-use and short-lived, so a stolen one is
// worth little.
const MaxAssertionLifetime = 10 * time.Minute

// MaxClientIDLen bounds a client id, wherever one arrives.
const MaxClientIDLen = 100

// maxJTILen bounds the jti kept in the replay set.
const maxJTILen = 200

// AssertionClientID reads the client id a client assertion claims (its
// iss), without verifying it: the keys that verify it are that client's.
func AssertionClientID(raw string) (string, error) {
	if raw == "" || len(raw) > MaxTokenLen {
		return "", fmt.Errorf("%w: empty or longer than %d bytes", ErrInvalidAssertion, MaxTokenLen)
	}
	var claims jwt.RegisteredClaims
	if _, _, err := jwt.NewParser(jwt.WithStrictDecoding()).ParseUnverified(raw, &claims); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidAssertion, err)
	}
	if claims.Issuer == "" || claims.Issuer != claims.Subject || len(claims.Issuer) > MaxClientIDLen {
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
// The client's clock may be AssertionSkew ahead on iat and nbf; exp gets
// only TokenLeeway, so that an assertion is never accepted after the
// replay set has forgotten its jti (kept until exp and TokenLeeway). An
// assertion stamped further ahead is ErrAssertionNotYetValid. Replay of
// the jti is checked by the caller (ReplaySet), which can share that
// across replicas.
func (t *Tokens) VerifyAssertion(raw, clientID string, keys []PublicKey) (Assertion, error) {
	if len(raw) > MaxTokenLen {
		return Assertion{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidAssertion, MaxTokenLen)
	}
	algs := make([]string, 0, len(keys))
	for _, k := range keys {
		algs = append(algs, k.Alg)
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods(algs),
		jwt.WithIssuer(clientID), jwt.WithSubject(clientID), jwt.WithAudience(t.assertionAudiences...),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		// AssertionSkew covers iat and nbf; exp is held to TokenLeeway below.
		jwt.WithTimeFunc(t.now), jwt.WithLeeway(AssertionSkew), jwt.WithStrictDecoding(),
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
		if onlyNotYetValid(err) {
			return Assertion{}, fmt.Errorf("%w: stamped %s ahead of credgate's clock, more than the %s tolerated: %w",
				ErrAssertionNotYetValid, ahead(claims, t.now()), AssertionSkew, err)
		}
		return Assertion{}, fmt.Errorf("%w: %w", ErrInvalidAssertion, err)
	}
	if used == "" {
		used = matchingKey(raw, keys)
	}
	now := t.now()
	if !now.Before(claims.ExpiresAt.Time.Add(TokenLeeway)) {
		return Assertion{}, fmt.Errorf("%w: expired", ErrInvalidAssertion)
	}
	// A client whose clock runs ahead stamps exp ahead too.
	if claims.ExpiresAt.Time.After(now.Add(MaxAssertionLifetime + AssertionSkew)) {
		return Assertion{}, fmt.Errorf("%w: exp more than %s ahead", ErrInvalidAssertion, MaxAssertionLifetime)
	}
	if claims.ID == "" || len(claims.ID) > maxJTILen {
		return Assertion{}, fmt.Errorf("%w: jti is required (at most %d characters)", ErrInvalidAssertion, maxJTILen)
	}
	return Assertion{ClientID: clientID, KeyID: used, JTI: claims.ID, Expires: claims.ExpiresAt.Time}, nil
}

// matchingKey finds which of several keys signed an already verified
// assertion without a kid.
func matchingKey(raw string, keys []PublicKey) string {
	for _, k := range keys {
		p := jwt.NewParser(jwt.WithValidMethods([]string{k.Alg}), jwt.WithoutClaimsValidation(), jwt.WithStrictDecoding())
		if _, err := p.Parse(raw, func(*jwt.Token) (any, error) { return k.Key, nil }); err == nil {
			return k.ID
		}
	}
	return ""
}
