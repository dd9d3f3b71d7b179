package service

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// CredentialKind is how a credential proves the partner's identity.
type CredentialKind string

// Credential kinds. The names are those of the OAuth client authentication
// methods they serve (RFC 7591 token_endpoint_auth_method).
const (
	// CredentialSecret is a client secret, stored as an argon2id hash.
	CredentialSecret CredentialKind = "client_secret"
	// CredentialPublicKey is a registered public key: the partner signs a
	// client assertion (private_key_jwt, RFC 7523) and holds no secret.
	CredentialPublicKey CredentialKind = "public_key"
)

// Token endpoint authentication methods (RFC 7591 names).
const (
	AuthMethodSecret     = "client_secret_basic"
	AuthMethodPrivateKey = "private_key_jwt"
)

// Credential is one way a partner authenticates at the token endpoint.
// Access tokens name the credential they were issued for, so that retiring
// a credential also retires its tokens.
type Credential struct {
	ID   string         `json:"id"`
	Kind CredentialKind `json:"kind"`
	// SecretHash is the PHC-encoded argon2id hash (client_secret only).
	SecretHash string `json:"secret_hash,omitempty"`
	// JWK is the registered public key as compact JSON (public_key only).
	// It is kept as a string so that stores that normalise JSON (jsonb)
	// return it byte for byte.
	JWK       string    `json:"jwk,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt ends the credential: set when a rotation retires it, at
	// the end of the overlap window.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// ValidAt reports whether the credential works at t.
func (c Credential) ValidAt(t time.Time) bool { return c.ExpiresAt == nil || t.Before(*c.ExpiresAt) }

// legacyCredentialID names the secret of a partner stored before
// credentials existed (only SecretHash set).
const legacyCredentialID = "secret-0"

// CredentialsOf returns p's credentials; a partner stored with only a
// SecretHash has that one secret.
func CredentialsOf(p Partner) []Credential {
	if len(p.Credentials) == 0 && p.SecretHash != "" {
		return []Credential{{ID: legacyCredentialID, Kind: CredentialSecret, SecretHash: p.SecretHash, CreatedAt: p.CreatedAt}}
	}
	return p.Credentials
}

// AuthMethod is the token endpoint authentication method of p.
func AuthMethod(p Partner) string {
	for _, c := range CredentialsOf(p) {
		if c.Kind == CredentialPublicKey {
			return AuthMethodPrivateKey
		}
	}
	return AuthMethodSecret
}

// CredentialValid reports whether p holds a credential id that still works
// at t. Access tokens are accepted only while the credential they were
// issued for is valid.
func CredentialValid(p Partner, id string, t time.Time) bool {
	if id == "" {
		return false
	}
	for _, c := range CredentialsOf(p) {
		if c.ID == id {
			return c.ValidAt(t)
		}
	}
	return false
}

// Limits of registered keys.
const (
	MaxJWKLen     = 8 << 10
	MaxPublicKeys = 10
	minRSABits    = 2048
	maxRSABits    = 8192
)

// ErrInvalidKey: a registered public key is malformed, weak, private or of
// an unsupported type.
var ErrInvalidKey = errors.New("invalid public key")

// PublicKey is a parsed partner key: the algorithm it is pinned to and
// the key that verifies its signatures.
type PublicKey struct {
	ID  string
	Alg string // EdDSA, ES256, RS256 or PS256
	Key crypto.PublicKey
}

// jwk holds the members of RFC 7517/7518/8037 public keys that credgate
// accepts; private members are detected separately and refused.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
}

// ParseJWK parses one public JWK and returns the key and its canonical
// compact JSON (only the members credgate uses, with kid filled in from
// the RFC 7638 thumbprint when absent). Private keys, symmetric keys,
// RSA keys under 2048 bits and algorithms other than EdDSA (Ed25519),
// ES256 (P-256), RS256 and PS256 are refused: each key is pinned to one
// algorithm (RFC 8725 §3.1).
func ParseJWK(raw []byte) (PublicKey, string, error) {
	if len(raw) > MaxJWKLen {
		return PublicKey{}, "", fmt.Errorf("%w: longer than %d bytes", ErrInvalidKey, MaxJWKLen)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return PublicKey{}, "", fmt.Errorf("%w: not a JSON object", ErrInvalidKey)
	}
	for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
		if _, ok := members[private]; ok {
			return PublicKey{}, "", fmt.Errorf("%w: the key holds private member %q; register the public key only and keep the private key", ErrInvalidKey, private)
		}
	}
	var k jwk
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&k); err != nil {
		return PublicKey{}, "", fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	if k.Use != "" && k.Use != "sig" {
		return PublicKey{}, "", fmt.Errorf("%w: use must be sig", ErrInvalidKey)
	}
	if len(k.Kid) > 200 {
		return PublicKey{}, "", fmt.Errorf("%w: kid longer than 200 characters", ErrInvalidKey)
	}
	b64 := base64.RawURLEncoding.Strict()
	var pk PublicKey
	var thumb string
	switch k.Kty {
	case "OKP":
		if k.Crv != "Ed25519" {
			return PublicKey{}, "", fmt.Errorf("%w: OKP keys must be Ed25519", ErrInvalidKey)
		}
		if k.Alg != "" && k.Alg != "EdDSA" {
			return PublicKey{}, "", fmt.Errorf("%w: an Ed25519 key signs with EdDSA, not %q", ErrInvalidKey, k.Alg)
		}
		x, err := b64.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return PublicKey{}, "", fmt.Errorf("%w: x must be a base64url 32-byte Ed25519 key", ErrInvalidKey)
		}
		pk = PublicKey{Alg: "EdDSA", Key: ed25519.PublicKey(x)}
		k = jwk{Kty: "OKP", Crv: "Ed25519", X: k.X, Kid: k.Kid, Alg: "EdDSA", Use: "sig"}
		thumb = fmt.Sprintf(`{"crv":"Ed25519","kty":"OKP","x":%q}`, k.X)
	case "EC":
		if k.Crv != "P-256" {
			return PublicKey{}, "", fmt.Errorf("%w: EC keys must be on P-256", ErrInvalidKey)
		}
		if k.Alg != "" && k.Alg != "ES256" {
			return PublicKey{}, "", fmt.Errorf("%w: a P-256 key signs with ES256, not %q", ErrInvalidKey, k.Alg)
		}
		x, errX := b64.DecodeString(k.X)
		y, errY := b64.DecodeString(k.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return PublicKey{}, "", fmt.Errorf("%w: x and y must be base64url 32-byte coordinates", ErrInvalidKey)
		}
		point := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
		if err != nil {
			return PublicKey{}, "", fmt.Errorf("%w: the point is not on P-256", ErrInvalidKey)
		}
		pk = PublicKey{Alg: "ES256", Key: pub}
		k = jwk{Kty: "EC", Crv: "P-256", X: k.X, Y: k.Y, Kid: k.Kid, Alg: "ES256", Use: "sig"}
		thumb = fmt.Sprintf(`{"crv":"P-256","kty":"EC","x":%q,"y":%q}`, k.X, k.Y)
	case "RSA":
		alg := k.Alg
		if alg == "" {
			alg = "RS256"
		}
		if alg != "RS256" && alg != "PS256" {
			return PublicKey{}, "", fmt.Errorf("%w: an RSA key signs with RS256 or PS256, not %q", ErrInvalidKey, k.Alg)
		}
		n, errN := b64.DecodeString(k.N)
		e, errE := b64.DecodeString(k.E)
		if errN != nil || errE != nil || len(n) == 0 || len(e) == 0 || len(e) > 4 || n[0] == 0 || e[0] == 0 {
			return PublicKey{}, "", fmt.Errorf("%w: n and e must be base64url unsigned integers without leading zeros", ErrInvalidKey)
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if bits := pub.N.BitLen(); bits < minRSABits || bits > maxRSABits {
			return PublicKey{}, "", fmt.Errorf("%w: RSA keys must have %d to %d bits, this has %d", ErrInvalidKey, minRSABits, maxRSABits, bits)
		}
		if pub.E < 3 || pub.E%2 == 0 {
			return PublicKey{}, "", fmt.Errorf("%w: the RSA exponent must be odd and at least 3", ErrInvalidKey)
		}
		pk = PublicKey{Alg: alg, Key: pub}
		k = jwk{Kty: "RSA", N: k.N, E: k.E, Kid: k.Kid, Alg: alg, Use: "sig"}
		thumb = fmt.Sprintf(`{"e":%q,"kty":"RSA","n":%q}`, k.E, k.N)
	case "oct":
		return PublicKey{}, "", fmt.Errorf("%w: symmetric keys are not accepted; register a public key", ErrInvalidKey)
	default:
		return PublicKey{}, "", fmt.Errorf("%w: unsupported kty %q (use OKP Ed25519, EC P-256 or RSA)", ErrInvalidKey, k.Kty)
	}
	if k.Kid == "" {
		sum := sha256.Sum256([]byte(thumb))
		k.Kid = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	pk.ID = k.Kid
	canonical, err := json.Marshal(k)
	if err != nil {
		return PublicKey{}, "", fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	return pk, string(canonical), nil
}

// PublicKeysOf returns p's public keys that are valid at t.
func PublicKeysOf(p Partner, t time.Time) []PublicKey {
	var out []PublicKey
	for _, c := range CredentialsOf(p) {
		if c.Kind != CredentialPublicKey || !c.ValidAt(t) {
			continue
		}
		k, _, err := ParseJWK([]byte(c.JWK))
		if err != nil {
			continue // validated at registration; a bad stored key cannot sign in
		}
		k.ID = c.ID
		out = append(out, k)
	}
	return out
}
