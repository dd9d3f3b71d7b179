package access

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters for client secrets (RFC 9106's second recommended
// option, with memory lowered to 19 MiB as OWASP suggests for servers that
// hash on the request path). Secrets are random and long, so these guard
// against a stolen database, not weak secrets.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// Bounds of the cost VerifySecret accepts from a stored hash.
const (
	maxArgonMemory = 256 * 1024
	maxArgonTime   = 10
)

// SecretCost is the argon2id cost of hashing a client secret: passes over
// the memory, and the memory in KiB. A hash records its cost, and
// VerifySecret reads it from there, so hashes of any cost within its
// bounds verify whatever the cost new hashes are made at.
type SecretCost struct {
	Time      uint32
	MemoryKiB uint32
}

// DefaultSecretCost is credgate's cost: 2 passes over 19 MiB, about 105 ms
// a hash on one core of the machine in docs/PERFORMANCE.md.
func DefaultSecretCost() SecretCost { return SecretCost{Time: argonTime, MemoryKiB: argonMemory} }

// ErrSecretCost: a cost outside what VerifySecret accepts, or below
// argon2's minimum (1 pass, 8 KiB a lane).
var ErrSecretCost = errors.New("secret hash cost out of bounds")

func (c SecretCost) valid() bool {
	return c.Time >= 1 && c.Time <= maxArgonTime && c.MemoryKiB >= 8*argonThreads && c.MemoryKiB <= maxArgonMemory
}

// HashSecret returns the PHC-encoded argon2id hash of secret at cost c
// (credgate's: DefaultSecretCost).
func HashSecret(secret string, c SecretCost) (string, error) {
	if !c.valid() {
		return "", fmt.Errorf("%w: t=%d, m=%d KiB", ErrSecretCost, c.Time, c.MemoryKiB)
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("secret salt: %w", err)
	}
	key := argon2.IDKey([]byte(secret), salt, c.Time, c.MemoryKiB, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, c.MemoryKiB, c.Time, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifySecret reports whether secret matches the PHC-encoded hash. A hash
// with parameters beyond credgate's bounds (memory, passes, key length) is
// a mismatch: a tampered row must not make one check exhaust the replica.
func VerifySecret(hash, secret string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m > maxArgonMemory || t > maxArgonTime || p == 0 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > 64 {
		return false
	}
	got := argon2.IDKey([]byte(secret), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummySalt salts the hash SpendVerify computes and compares with nothing.
const dummySalt = "somesaltsomesalt"

// SpendVerify takes the time of a real VerifySecret of a hash made at
// cost c and matches nothing: a miss on an unknown client id then costs
// what a wrong secret costs, so timing does not reveal which client ids
// exist. c is the cost the caller hashes secrets at; at another, a miss
// would be told apart by its time.
func SpendVerify(secret string, c SecretCost) {
	if !c.valid() {
		c = DefaultSecretCost()
	}
	_ = argon2.IDKey([]byte(secret), []byte(dummySalt), c.Time, c.MemoryKiB, argonThreads, argonKeyLen)
}

// NewSecret returns a random client secret (256 bits).
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("new secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
