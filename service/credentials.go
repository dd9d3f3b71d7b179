package service

import (
	"slices"
	"time"

	"github.com/credgate/credgate/access"
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

// AuthMethod is the token endpoint authentication method of p: that of
// its current credentials (those its last registration or rotation gave,
// without an end), not of keys a rotation to a secret retired or ended.
func AuthMethod(p Partner) string {
	creds := CredentialsOf(p)
	current := slices.ContainsFunc(creds, func(c Credential) bool { return c.ExpiresAt == nil })
	for _, c := range creds {
		if c.Kind == CredentialPublicKey && (c.ExpiresAt == nil || !current) {
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

// MaxPublicKeys bounds the keys one partner registers.
const MaxPublicKeys = access.MaxPublicKeys

// PublicKeysOf returns p's public keys that are valid at t.
func PublicKeysOf(p Partner, t time.Time) []access.PublicKey {
	var out []access.PublicKey
	for _, c := range CredentialsOf(p) {
		if c.Kind != CredentialPublicKey || !c.ValidAt(t) {
			continue
		}
		k, _, err := access.ParseJWK([]byte(c.JWK))
		if err != nil {
			continue // validated at registration; a bad stored key cannot sign in
		}
		k.ID = c.ID
		out = append(out, k)
	}
	return out
}
