package service

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/crypto/argon2"

	"github.com/credgate/credgate/policy"
)

// Errors of partner administration and authentication.
var (
	ErrInvalidClient  = errors.New("invalid client credentials")
	ErrInvalidPartner = errors.New("invalid partner")
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

// HashSecret returns the PHC-encoded argon2id hash of secret.
func HashSecret(secret string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(secret), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifySecret reports whether secret matches the PHC-encoded hash.
func VerifySecret(hash, secret string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m > 256*1024 || t > 10 || p == 0 {
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

// NewSecret returns a random client secret (256 bits).
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Partners administers partners and authenticates their credentials.
type Partners struct {
	store   PartnerStore
	catalog *policy.Catalog
	now     func() time.Time
	ttl     time.Duration

	mu    sync.Mutex
	cache map[string]cachedPartner
}

type cachedPartner struct {
	p       Partner
	err     error
	expires time.Time
}

// PartnersOption configures Partners.
type PartnersOption func(*Partners)

// WithPartnerCacheTTL bounds how long a partner's state is trusted before
// it is read again; a revocation takes effect on every replica within it.
func WithPartnerCacheTTL(d time.Duration) PartnersOption { return func(p *Partners) { p.ttl = d } }

// NewPartners returns the partner service.
func NewPartners(store PartnerStore, cat *policy.Catalog, opts ...PartnersOption) *Partners {
	p := &Partners{store: store, catalog: cat, now: time.Now, ttl: 5 * time.Second, cache: map[string]cachedPartner{}}
	for _, o := range opts {
		o(p)
	}
	return p
}

// NewPartnerInput describes a partner to register.
type NewPartnerInput struct {
	Name    string
	Role    Role
	Actions []string
	// ClientID and Secret may be given (bootstrap admin); else generated.
	ClientID string
	Secret   string
}

// Limits of partner fields.
const (
	MaxNameLen     = 200
	MaxClientIDLen = 100
)

// Create registers a partner and returns it with its secret, which is
// stored only as a hash and never shown again.
func (s *Partners) Create(ctx context.Context, in NewPartnerInput) (Partner, string, error) {
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || utf8.RuneCountInString(in.Name) > MaxNameLen {
		return Partner{}, "", fmt.Errorf("%w: name is required, at most %d characters", ErrInvalidPartner, MaxNameLen)
	}
	if in.Role == "" {
		in.Role = RolePartner
	}
	switch in.Role {
	case RolePartner:
		if len(in.Actions) == 0 {
			return Partner{}, "", fmt.Errorf("%w: a partner needs at least one action", ErrInvalidPartner)
		}
	case RoleAdmin, RoleAuditor:
	default:
		return Partner{}, "", fmt.Errorf("%w: unknown role %q", ErrInvalidPartner, in.Role)
	}
	seen := map[string]bool{}
	for _, a := range in.Actions {
		if _, ok := s.catalog.Action(a); !ok {
			return Partner{}, "", fmt.Errorf("%w: %w %q", ErrInvalidPartner, policy.ErrUnknownAction, a)
		}
		if seen[a] {
			return Partner{}, "", fmt.Errorf("%w: action %q listed twice", ErrInvalidPartner, a)
		}
		seen[a] = true
	}
	if in.ClientID == "" {
		in.ClientID = "cg_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	} else if len(in.ClientID) > MaxClientIDLen || strings.ContainsAny(in.ClientID, ": \t\r\n") {
		return Partner{}, "", fmt.Errorf("%w: client_id must be at most %d characters without spaces or colons", ErrInvalidPartner, MaxClientIDLen)
	}
	if in.Secret == "" {
		sec, err := NewSecret()
		if err != nil {
			return Partner{}, "", err
		}
		in.Secret = sec
	} else if len(in.Secret) < 16 {
		return Partner{}, "", fmt.Errorf("%w: a client secret needs at least 16 characters", ErrInvalidPartner)
	}
	hash, err := HashSecret(in.Secret)
	if err != nil {
		return Partner{}, "", err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	p := Partner{
		ID: uuid.NewString(), ClientID: in.ClientID, Name: in.Name, Role: in.Role, Actions: in.Actions,
		SecretHash: hash, Status: PartnerActive, CreatedAt: now, UpdatedAt: now, Version: 1,
	}
	if err := s.store.InsertPartner(ctx, p); err != nil {
		return Partner{}, "", fmt.Errorf("store partner: %w", err)
	}
	return p, in.Secret, nil
}

// Authenticate checks a client id and secret.
func (s *Partners) Authenticate(ctx context.Context, clientID, secret string) (Partner, error) {
	p, err := s.store.PartnerByClientID(ctx, clientID)
	if errors.Is(err, ErrNotFound) {
		// Spend the same time as a real check so that timing does not
		// reveal which client ids exist.
		VerifySecret(dummyHash, secret)
		return Partner{}, ErrInvalidClient
	}
	if err != nil {
		return Partner{}, err
	}
	if !VerifySecret(p.SecretHash, secret) || p.Status != PartnerActive {
		return Partner{}, ErrInvalidClient
	}
	return p, nil
}

// dummyHash is a valid hash of a random secret, for constant-time misses.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2Yh2l1kC7tqT0a9y0mD8B0q4oV1o1Jm3uU2F2oLq3Yk"

// Active returns the partner with the given client id if it is active,
// trusting a cached copy for at most the cache TTL.
func (s *Partners) Active(ctx context.Context, clientID string) (Partner, error) {
	now := s.now()
	s.mu.Lock()
	c, ok := s.cache[clientID]
	s.mu.Unlock()
	if !ok || now.After(c.expires) {
		p, err := s.store.PartnerByClientID(ctx, clientID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return Partner{}, err
		}
		c = cachedPartner{p: p, err: err, expires: now.Add(s.ttl)}
		s.mu.Lock()
		if len(s.cache) > 100_000 {
			clear(s.cache)
		}
		s.cache[clientID] = c
		s.mu.Unlock()
	}
	if c.err != nil || c.p.Status != PartnerActive {
		return Partner{}, ErrInvalidClient
	}
	return c.p, nil
}

// List returns every partner.
func (s *Partners) List(ctx context.Context) ([]Partner, error) { return s.store.ListPartners(ctx) }

// Get returns one partner by client id.
func (s *Partners) Get(ctx context.Context, clientID string) (Partner, error) {
	return s.store.PartnerByClientID(ctx, clientID)
}

// Revoke stops a partner's credentials and tokens from working.
func (s *Partners) Revoke(ctx context.Context, clientID string) (Partner, error) {
	p, err := s.store.PartnerByClientID(ctx, clientID)
	if err != nil {
		return Partner{}, err
	}
	if p.Status == PartnerRevoked {
		return p, nil
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	p.Status, p.RevokedAt, p.UpdatedAt = PartnerRevoked, &now, now
	p.Version++
	if err := s.store.UpdatePartner(ctx, p); err != nil {
		return Partner{}, err
	}
	s.mu.Lock()
	delete(s.cache, clientID)
	s.mu.Unlock()
	return p, nil
}

// EnsureAdmin registers the bootstrap administrator if no partner with
// that client id exists. It reports whether it created one.
func (s *Partners) EnsureAdmin(ctx context.Context, clientID, secret string) (bool, error) {
	_, err := s.store.PartnerByClientID(ctx, clientID)
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return false, err
	}
	_, _, err = s.Create(ctx, NewPartnerInput{Name: "bootstrap administrator", Role: RoleAdmin, ClientID: clientID, Secret: secret})
	if errors.Is(err, ErrConflict) {
		return false, nil // another replica won the race
	}
	return err == nil, err
}
