package access

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// Limits of registered keys.
const (
	// MaxJWKLen bounds one JWK's JSON.
	MaxJWKLen = 8 << 10
	// MaxPublicKeys bounds the keys one partner registers.
	MaxPublicKeys = 10
	minRSABits    = 2048
	maxRSABits    = 8192
	maxKidLen     = 200
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

// jwk is the canonical form of a registered key: only the members of RFC
// 7517/7518/8037 public keys that credgate uses, in a fixed order, so that
// stores keep and compare it byte for byte.
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

// privateMembers are the JWK members that carry private or symmetric key
// material (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
var privateMembers = [...]string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// ParseJWK parses one public JWK and returns the key and its canonical
// compact JSON (only the members credgate uses, with kid filled in from
// the RFC 7638 thumbprint when absent). Private keys, symmetric keys,
// RSA keys outside 2048–8192 bits and algorithms other than EdDSA
// (Ed25519), ES256 (P-256), RS256 and PS256 are refused: each key is
// pinned to one algorithm (RFC 8725 §3.1). Member names are
// case-sensitive (RFC 7517 §4) and key material must be unpadded,
// canonical base64url; members credgate does not use (x5c, …) are ignored.
func ParseJWK(raw []byte) (PublicKey, string, error) {
	if len(raw) > MaxJWKLen {
		return PublicKey{}, "", fmt.Errorf("%w: longer than %d bytes", ErrInvalidKey, MaxJWKLen)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil || members == nil {
		return PublicKey{}, "", fmt.Errorf("%w: not a JSON object", ErrInvalidKey)
	}
	for _, private := range privateMembers {
		if _, ok := members[private]; ok {
			return PublicKey{}, "", fmt.Errorf("%w: the key holds private member %q; register the public key only and keep the private key", ErrInvalidKey, private)
		}
	}
	var k jwk
	for name, dst := range map[string]*string{"kty": &k.Kty, "kid": &k.Kid, "alg": &k.Alg, "use": &k.Use, "crv": &k.Crv,
		"x": &k.X, "y": &k.Y, "n": &k.N, "e": &k.E} {
		if v, ok := members[name]; ok {
			if err := json.Unmarshal(v, dst); err != nil {
				return PublicKey{}, "", fmt.Errorf("%w: member %q must be a string", ErrInvalidKey, name)
			}
		}
	}
	if k.Use != "" && k.Use != "sig" {
		return PublicKey{}, "", fmt.Errorf("%w: use must be sig", ErrInvalidKey)
	}
	if len(k.Kid) > maxKidLen {
		return PublicKey{}, "", fmt.Errorf("%w: kid longer than %d characters", ErrInvalidKey, maxKidLen)
	}
	canon, err := pin(k)
	if err != nil {
		return PublicKey{}, "", err
	}
	// go-jose reads the key material (and checks an EC point is on its
	// curve); the rules above and below are credgate's.
	material, _ := json.Marshal(jwk{Kty: canon.Kty, Crv: canon.Crv, X: canon.X, Y: canon.Y, N: canon.N, E: canon.E})
	var jk jose.JSONWebKey
	if err := jk.UnmarshalJSON(material); err != nil {
		return PublicKey{}, "", fmt.Errorf("%w: %s key material: %v", ErrInvalidKey, canon.Kty, err)
	}
	if err := checkMaterial(jk.Key); err != nil {
		return PublicKey{}, "", err
	}
	if canon.Kid == "" {
		thumb, err := jk.Thumbprint(crypto.SHA256)
		if err != nil {
			return PublicKey{}, "", fmt.Errorf("%w: thumbprint: %v", ErrInvalidKey, err)
		}
		canon.Kid = base64.RawURLEncoding.EncodeToString(thumb)
	}
	out, err := json.Marshal(canon)
	if err != nil {
		return PublicKey{}, "", fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	return PublicKey{ID: canon.Kid, Alg: canon.Alg, Key: jk.Key}, string(out), nil
}

// pin checks the key type, curve and algorithm, and the encoding of the
// key material, and returns the canonical members with the algorithm the
// key is pinned to.
func pin(k jwk) (jwk, error) {
	b64 := base64.RawURLEncoding.Strict()
	switch k.Kty {
	case "OKP":
		if k.Crv != "Ed25519" {
			return jwk{}, fmt.Errorf("%w: OKP keys must be Ed25519", ErrInvalidKey)
		}
		if k.Alg != "" && k.Alg != "EdDSA" {
			return jwk{}, fmt.Errorf("%w: an Ed25519 key signs with EdDSA, not %q", ErrInvalidKey, k.Alg)
		}
		if x, err := b64.DecodeString(k.X); err != nil || len(x) != ed25519.PublicKeySize {
			return jwk{}, fmt.Errorf("%w: x must be a base64url 32-byte Ed25519 key", ErrInvalidKey)
		}
		return jwk{Kty: "OKP", Crv: "Ed25519", X: k.X, Kid: k.Kid, Alg: "EdDSA", Use: "sig"}, nil
	case "EC":
		if k.Crv != "P-256" {
			return jwk{}, fmt.Errorf("%w: EC keys must be on P-256", ErrInvalidKey)
		}
		if k.Alg != "" && k.Alg != "ES256" {
			return jwk{}, fmt.Errorf("%w: a P-256 key signs with ES256, not %q", ErrInvalidKey, k.Alg)
		}
		x, errX := b64.DecodeString(k.X)
		y, errY := b64.DecodeString(k.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return jwk{}, fmt.Errorf("%w: x and y must be base64url 32-byte coordinates", ErrInvalidKey)
		}
		return jwk{Kty: "EC", Crv: "P-256", X: k.X, Y: k.Y, Kid: k.Kid, Alg: "ES256", Use: "sig"}, nil
	case "RSA":
		alg := k.Alg
		if alg == "" {
			alg = "RS256"
		}
		if alg != "RS256" && alg != "PS256" {
			return jwk{}, fmt.Errorf("%w: an RSA key signs with RS256 or PS256, not %q", ErrInvalidKey, k.Alg)
		}
		n, errN := b64.DecodeString(k.N)
		e, errE := b64.DecodeString(k.E)
		if errN != nil || errE != nil || len(n) == 0 || len(e) == 0 || len(e) > 4 || n[0] == 0 || e[0] == 0 {
			return jwk{}, fmt.Errorf("%w: n and e must be base64url unsigned integers without leading zeros", ErrInvalidKey)
		}
		if bits := (len(n)-1)*8 + bitLen(n[0]); bits < minRSABits || bits > maxRSABits {
			return jwk{}, fmt.Errorf("%w: RSA keys must have %d to %d bits, this has %d", ErrInvalidKey, minRSABits, maxRSABits, bits)
		}
		return jwk{Kty: "RSA", N: k.N, E: k.E, Kid: k.Kid, Alg: alg, Use: "sig"}, nil
	case "oct":
		return jwk{}, fmt.Errorf("%w: symmetric keys are not accepted; register a public key", ErrInvalidKey)
	default:
		return jwk{}, fmt.Errorf("%w: unsupported kty %q (use OKP Ed25519, EC P-256 or RSA)", ErrInvalidKey, k.Kty)
	}
}

func bitLen(b byte) int {
	n := 0
	for ; b != 0; b >>= 1 {
		n++
	}
	return n
}

// checkMaterial applies credgate's rules to the key go-jose read.
func checkMaterial(key any) error {
	switch pub := key.(type) {
	case ed25519.PublicKey:
		return nil
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return fmt.Errorf("%w: EC keys must be on P-256", ErrInvalidKey)
		}
		return nil
	case *rsa.PublicKey:
		if pub.E < 3 || pub.E%2 == 0 {
			return fmt.Errorf("%w: the RSA exponent must be odd and at least 3", ErrInvalidKey)
		}
		return nil
	}
	return fmt.Errorf("%w: unsupported key %T", ErrInvalidKey, key)
}

// ParseJWKS parses a JSON Web Key Set (RFC 7517 §5) of at most
// MaxPublicKeys public keys with ParseJWK, and returns the keys and their
// canonical forms in order. An error names the key at fault.
func ParseJWKS(raw []byte) ([]PublicKey, []string, error) {
	if len(raw) > MaxPublicKeys*MaxJWKLen {
		return nil, nil, fmt.Errorf("%w: the key set is longer than %d bytes", ErrInvalidKey, MaxPublicKeys*MaxJWKLen)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, nil, fmt.Errorf("%w: not a JWK Set: %v", ErrInvalidKey, err)
	}
	if len(set.Keys) == 0 || len(set.Keys) > MaxPublicKeys {
		return nil, nil, fmt.Errorf("%w: a key set holds 1 to %d keys", ErrInvalidKey, MaxPublicKeys)
	}
	keys := make([]PublicKey, 0, len(set.Keys))
	canon := make([]string, 0, len(set.Keys))
	for i, k := range set.Keys {
		pk, c, err := ParseJWK(k)
		if err != nil {
			return nil, nil, fmt.Errorf("keys[%d]: %w", i, err)
		}
		keys, canon = append(keys, pk), append(canon, c)
	}
	return keys, canon, nil
}
