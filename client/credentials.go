package client

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ClientAssertionType is the client_assertion_type of private_key_jwt.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionLifetime is how long a client assertion is valid: long enough
// for clock skew, short enough that the server's replay set stays small.
const assertionLifetime = time.Minute

type secretCredential struct{ id, secret string }

func (s secretCredential) clientID() string { return s.id }

func (s secretCredential) authenticate(req *http.Request, _ url.Values, _ string, _ time.Time) error {
	req.SetBasicAuth(s.id, s.secret)
	return nil
}

type keyCredential struct {
	id, kid string
	key     crypto.Signer
}

func (k *keyCredential) clientID() string { return k.id }

// authenticate signs a fresh assertion (a new jti each time: the server
// refuses a replayed one).
func (k *keyCredential) authenticate(_ *http.Request, form url.Values, _ string, now time.Time) error {
	var method jwt.SigningMethod
	switch key := k.key.(type) {
	case ed25519.PrivateKey:
		method = jwt.SigningMethodEdDSA
	case *ecdsa.PrivateKey:
		if key.Curve != elliptic.P256() {
			return fmt.Errorf("credgate client: private_key_jwt: only P-256 EC keys (ES256)")
		}
		method = jwt.SigningMethodES256
	case *rsa.PrivateKey:
		method = jwt.SigningMethodRS256
	default:
		return fmt.Errorf("credgate client: private_key_jwt: unsupported key type %T", k.key)
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return err
	}
	claims := jwt.MapClaims{"iss": k.id, "sub": k.id, "aud": "credgate", "iat": now.Unix(),
		"exp": now.Add(assertionLifetime).Unix(), "jti": hex.EncodeToString(jti[:])}
	tok := jwt.NewWithClaims(method, claims)
	if k.kid != "" {
		tok.Header["kid"] = k.kid
	}
	signed, err := tok.SignedString(k.key)
	if err != nil {
		return fmt.Errorf("credgate client: sign the client assertion: %w", err)
	}
	form.Set("client_id", k.id)
	form.Set("client_assertion_type", ClientAssertionType)
	form.Set("client_assertion", signed)
	return nil
}
