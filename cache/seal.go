package cache

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"
)

// Redis holds nothing about a subject in the clear. Whoever reads Redis
// (an operator's redis-cli --scan, a dump, a replica of it, a neighbour
// sharing it) would otherwise learn who is listed and why: the subjects'
// numbers, resident ID numbers included, and whole entries (reasons,
// departments, evidence, responsible persons' numbers) that
// standard-visibility partners are never shown. And whoever can write to
// it must not be able to make a replica answer clear for a listed subject.
//
//   - Key names carry a keyed hash of the subject, not the subject:
//     HMAC-SHA256 under the deployment's secret, truncated to 128 bits,
//     base64url, as the hash tag (<prefix>:{<tag>}:e and :g), so that a
//     subject's value and generation still share a slot.
//   - Values are sealed (XChaCha20-Poly1305) with the key name, the
//     subject and the generation the fill was made under as associated
//     data: a value moved to another key, or put back after an
//     invalidation bumped the generation, does not open. One that does not
//     open — forged, altered, moved, written under another secret or by an
//     older release (whose plain values are under plain names anyway) — is
//     a miss, overwritten by the fill that follows, counted
//     (credgate_cache_redis_values_total{fate="rejected"}) and logged once.
//   - Invalidation messages are sealed too (the channel's name as
//     associated data): the replicas need the subjects themselves, to drop
//     their local copies and mark the listed filter, so a keyed hash would
//     not do. One that does not open is counted
//     (credgate_cache_pubsub_messages_total{result="rejected"}), logged once
//     and taken as a message lost: the replica reads the change log at
//     once.
//
// XChaCha20-Poly1305 rather than AES-GCM: its nonces are 192 random bits,
// so the secret, which lives as long as the key it is derived from, has no
// practical limit on the values sealed under it (AES-GCM's random 96-bit
// nonces allow about 2^32, which a busy deployment's fills would reach).
//
// The secret (WithRedisSecret) is shared by the replicas of a deployment;
// key-name, value and message keys are derived from it with HKDF-SHA256,
// one label each. Replicas with different secrets do not see each other's
// values at all (their key names differ) and read each other's messages
// as lost; each one's reconciler still invalidates its own names.

// MinRedisSecret is the shortest secret WithRedisSecret takes.
const MinRedisSecret = 32

// ErrRedisSecret: the secret given to WithRedisSecret is too short.
var ErrRedisSecret = fmt.Errorf("cache: the Redis secret must be at least %d bytes", MinRedisSecret)

// errUnsealed: a sealed value or message did not open.
var errUnsealed = errors.New("cache: sealed Redis data does not open under this replica's secret")

// HKDF labels, one per use of the secret.
const (
	labelNames    = "credgate cache redis key names v1"
	labelValues   = "credgate cache redis values v1"
	labelMessages = "credgate cache redis invalidations v1"
)

// sealFormat is the first byte of every sealed value and message: the
// format (this layout, these keys). A value of an older release, JSON,
// starts with '{'.
const sealFormat = 0x01

// tagBytes is how much of the HMAC names a subject: 128 bits.
const tagBytes = 16

// WithRedisSecret sets the secret the replicas of a deployment share, from
// which the Redis tier derives the keys that name, seal and authenticate
// what it keeps in Redis (at least MinRedisSecret bytes, uniformly random
// or derived from such a key; serve derives it from the token-signing
// key). Without it, a tier with Redis seals under a random secret of its
// own: nothing leaks, but no other replica can use its values or messages.
func WithRedisSecret(secret []byte) Option {
	return func(c *config) { c.redisSecret, c.redisSecretSet = append([]byte(nil), secret...), true }
}

// sealer names, seals and opens what the Redis tier keeps.
type sealer struct {
	names    []byte    // HMAC key of the key names
	macs     sync.Pool // of hash.Hash under names
	values   cipher.AEAD
	messages cipher.AEAD
}

func newSealer(secret []byte) (*sealer, error) {
	if len(secret) < MinRedisSecret {
		return nil, ErrRedisSecret
	}
	derive := func(label string) ([]byte, error) {
		return hkdf.Key(sha256.New, secret, nil, label, chacha20poly1305.KeySize)
	}
	names, err := derive(labelNames)
	if err != nil {
		return nil, err
	}
	vk, err := derive(labelValues)
	if err != nil {
		return nil, err
	}
	mk, err := derive(labelMessages)
	if err != nil {
		return nil, err
	}
	s := &sealer{names: names}
	s.macs.New = func() any { return hmac.New(sha256.New, s.names) }
	if s.values, err = chacha20poly1305.NewX(vk); err != nil {
		return nil, err
	}
	if s.messages, err = chacha20poly1305.NewX(mk); err != nil {
		return nil, err
	}
	return s, nil
}

// randomSecret is the secret of a tier given none.
func randomSecret() []byte {
	b := make([]byte, MinRedisSecret)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return b
}

// tag is the name of subject in key names: a keyed hash, which says
// nothing of the subject to whoever lacks the secret.
func (s *sealer) tag(subject string) string {
	h := s.macs.Get().(hash.Hash)
	h.Reset()
	h.Write([]byte(subject))
	var sum [sha256.Size]byte
	b := h.Sum(sum[:0])
	s.macs.Put(h)
	return base64.RawURLEncoding.EncodeToString(b[:tagBytes])
}

// valueAD is a value's associated data: its key name, its subject (so a
// collision of tags could not serve one subject's value for another) and
// the generation it was filled under, each length-prefixed.
func valueAD(key, subject, gen string) []byte {
	ad := make([]byte, 0, 3*binary.MaxVarintLen16+len(key)+len(subject)+len(gen))
	for _, f := range []string{key, subject, gen} {
		ad = binary.AppendUvarint(ad, uint64(len(f)))
		ad = append(ad, f...)
	}
	return ad
}

// sealValue seals a value to be stored under key for subject, in
// generation gen.
func (s *sealer) sealValue(key, subject, gen string, plain []byte) []byte {
	return seal(s.values, valueAD(key, subject, gen), plain)
}

// openValue opens a value read from key for subject, in generation gen.
func (s *sealer) openValue(key, subject, gen string, sealed []byte) ([]byte, error) {
	return open(s.values, valueAD(key, subject, gen), sealed)
}

// sealMessage seals an invalidation message published on channel.
func (s *sealer) sealMessage(channel string, plain []byte) []byte {
	return seal(s.messages, []byte(channel), plain)
}

// openMessage opens an invalidation message received on channel.
func (s *sealer) openMessage(channel string, sealed []byte) ([]byte, error) {
	return open(s.messages, []byte(channel), sealed)
}

// seal is format, random nonce, ciphertext and tag.
func seal(aead cipher.AEAD, ad, plain []byte) []byte {
	n := aead.NonceSize()
	out := make([]byte, 1+n, 1+n+len(plain)+aead.Overhead())
	out[0] = sealFormat
	_, _ = rand.Read(out[1 : 1+n]) // never fails (crypto/rand)
	return aead.Seal(out, out[1:1+n], plain, ad)
}

func open(aead cipher.AEAD, ad, sealed []byte) ([]byte, error) {
	n := aead.NonceSize()
	if len(sealed) < 1+n+aead.Overhead() || sealed[0] != sealFormat {
		return nil, errUnsealed
	}
	plain, err := aead.Open(nil, sealed[1:1+n], sealed[1+n:], ad)
	if err != nil {
		return nil, errUnsealed
	}
	return plain, nil
}
