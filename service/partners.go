package service

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/maypok86/otter/v2"

	"github.com/credgate/credgate/access"
	"github.com/credgate/credgate/policy"
)

// Errors of partner administration and authentication.
var (
	ErrInvalidClient = errors.New("invalid client credentials")
	// ErrUnknownClient is the ErrInvalidClient of a client id that names
	// no partner. Callers answer it as ErrInvalidClient; logs use it to
	// leave out an id that may be a secret pasted into the wrong field.
	ErrUnknownClient  = fmt.Errorf("%w: unknown client id", ErrInvalidClient)
	ErrInvalidPartner = errors.New("invalid partner")
	// ErrLastAdmin: the act would leave no active administrator.
	ErrLastAdmin = errors.New("last active administrator")
	// ErrPartnerRevoked: the partner is revoked and cannot be changed.
	ErrPartnerRevoked = errors.New("partner is revoked")
)

// Partners administers partners and authenticates their credentials.
type Partners struct {
	store   PartnerStore
	catalog *policy.Catalog
	now     func() time.Time
	ttl     time.Duration
	audit   *Audit
	// hashing bounds concurrent argon2id computations: each takes 19 MiB
	// and tens of milliseconds, and a flood of token requests must not
	// exhaust the replica's memory.
	hashing chan struct{}
	// secretCost is what new secrets are hashed at (and misses spent at).
	secretCost access.SecretCost

	// cache holds each partner's state (or its absence) for the TTL.
	cache *otter.Cache[string, cachedPartner]
	// grace: how long past the TTL an active partner is trusted while the
	// store is unavailable.
	grace time.Duration

	// rereads holds the store read in flight for each client id, so that
	// the requests that find a partner's entry expired together make one
	// read between them, not one each on the store's connection pool.
	rereadsMu sync.Mutex
	rereads   map[string]*partnerReread
}

// partnerReread is one store read of a partner's state; done is closed
// when entry or err is set.
type partnerReread struct {
	done  chan struct{}
	entry cachedPartner
	err   error
}

// maxCachedPartners bounds the partner cache: ids of unknown clients are
// cached too, so a flood of made-up ids must not grow it without end.
const maxCachedPartners = 100_000

type cachedPartner struct {
	p       Partner
	err     error
	expires time.Time
	// confirmed is when the store last gave this state; the grace
	// (WithPartnerOutageGrace) counts from it.
	confirmed time.Time
	// storeAway: the last re-read found the store unavailable and the
	// grace kept this state.
	storeAway bool
}

// PartnersOption configures Partners.
type PartnersOption func(*Partners)

// WithPartnerCacheTTL bounds how long a partner's state is trusted before
// it is read again; a revocation takes effect on every replica within it.
func WithPartnerCacheTTL(d time.Duration) PartnersOption { return func(p *Partners) { p.ttl = d } }

// WithPartnerOutageGrace keeps trusting an active partner's cached state
// for up to d past its TTL while the store is unavailable, so that checks
// answered from the cache (with their evidence spooled) are not refused
// for want of a partner re-read. No revocation can be committed while the
// store is away; one committed by a replica that still reaches it takes
// effect here within TTL + d. Zero (the default): no grace.
func WithPartnerOutageGrace(d time.Duration) PartnersOption { return func(p *Partners) { p.grace = d } }

// WithPartnersAudit records every administrative act on partners.
func WithPartnersAudit(a *Audit) PartnersOption { return func(p *Partners) { p.audit = a } }

// WithPartnersClock sets the clock (tests).
func WithPartnersClock(now func() time.Time) PartnersOption { return func(p *Partners) { p.now = now } }

// WithHashConcurrency bounds concurrent secret hash computations (default:
// the number of CPUs, at least 2).
func WithHashConcurrency(n int) PartnersOption {
	return func(p *Partners) {
		if n > 0 {
			p.hashing = make(chan struct{}, n)
		}
	}
}

// WithSecretCost sets the argon2id cost new client secrets are hashed at
// (default access.DefaultSecretCost). Secrets hashed at another cost still
// verify: each hash records its own. Tests lower it, as a hash at
// credgate's cost takes about 200 ms under the race detector; a cost
// outside access's bounds fails each registration and rotation with
// access.ErrSecretCost.
func WithSecretCost(c access.SecretCost) PartnersOption {
	return func(p *Partners) { p.secretCost = c }
}

// NewPartners returns the partner service.
func NewPartners(store PartnerStore, cat *policy.Catalog, opts ...PartnersOption) *Partners {
	p := &Partners{store: store, catalog: cat, now: time.Now, ttl: 5 * time.Second,
		hashing: make(chan struct{}, max(2, runtime.NumCPU())), secretCost: access.DefaultSecretCost(),
		rereads: map[string]*partnerReread{}}
	for _, o := range opts {
		o(p)
	}
	p.cache = otter.Must(&otter.Options[string, cachedPartner]{
		MaximumSize: maxCachedPartners,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, cachedPartner]) time.Duration {
			return e.Value.confirmed.Add(p.ttl + p.grace).Sub(p.now())
		}),
	})
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
	// JWKS are public keys (JWK JSON): the partner then authenticates with
	// private_key_jwt and gets no secret.
	JWKS         [][]byte
	SubjectKinds []policy.SubjectKind
	Visibility   Visibility
	RateLimit    string
	// Region is the partner's jurisdiction, a GB/T 2260 code (role
	// partner only); "" gets national measures only.
	Region string
}

// Limits of partner fields.
const (
	MaxNameLen     = 200
	MaxClientIDLen = access.MaxClientIDLen
	MaxActions     = 200
	// MaxOverlap bounds a rotation's overlap window.
	MaxOverlap = 30 * 24 * time.Hour
	// DefaultOverlap is the overlap when a rotation names none.
	DefaultOverlap = 24 * time.Hour
	// EndedKeyMemory is how long a rotation keeps a public key it ended
	// listed, so that its kid cannot be registered again meanwhile: well
	// past the life of any token issued for it (15 minutes).
	EndedKeyMemory = 24 * time.Hour
	// maxEndedKeys bounds the ended keys kept (the most recently ended).
	maxEndedKeys = 4 * MaxPublicKeys
)

// ParseRate parses a request quota in the "<limit>-<period>" form (period
// S, M, H or D: per second, minute, hour or day), e.g. "6000-M".
func ParseRate(s string) (limit int64, period time.Duration, err error) {
	n, unit, ok := strings.Cut(s, "-")
	periods := map[string]time.Duration{"S": time.Second, "M": time.Minute, "H": time.Hour, "D": 24 * time.Hour}
	period, known := periods[strings.ToUpper(unit)]
	limit, perr := strconv.ParseInt(n, 10, 64)
	if !ok || !known || perr != nil || limit < 1 || limit > 1_000_000_000 || strings.HasPrefix(n, "+") {
		return 0, 0, fmt.Errorf("%w: rate limit %q must be <requests>-<S|M|H|D> with 1 to 1000000000 requests, e.g. 6000-M", ErrInvalidPartner, s)
	}
	return limit, period, nil
}

// partnerRegion validates a partner's registered region: a GB/T 2260 code,
// for role partner only (administrators and auditors name the region of
// each check they make or reconstruct).
func partnerRegion(role Role, region string) error {
	if region == "" {
		return nil
	}
	if role != RolePartner {
		return fmt.Errorf("%w: region applies to role partner only", ErrInvalidPartner)
	}
	if err := policy.ValidRegion(region); err != nil {
		return fmt.Errorf("%w: region: %w", ErrInvalidPartner, err)
	}
	return nil
}

// scope validates and normalises the scope fields shared by Create and
// Update.
func (s *Partners) scope(role Role, actions []string, kinds []policy.SubjectKind, vis Visibility, rate string) ([]string, []policy.SubjectKind, Visibility, string, error) {
	if len(actions) > MaxActions {
		return nil, nil, "", "", fmt.Errorf("%w: at most %d actions", ErrInvalidPartner, MaxActions)
	}
	seen := map[string]bool{}
	for _, a := range actions {
		if _, ok := s.catalog.Action(a); !ok {
			return nil, nil, "", "", fmt.Errorf("%w: unknown action %q (see GET /v1/catalog)", ErrInvalidPartner, a)
		}
		if seen[a] {
			return nil, nil, "", "", fmt.Errorf("%w: action %q listed twice", ErrInvalidPartner, a)
		}
		seen[a] = true
	}
	if len(kinds) > 2 {
		return nil, nil, "", "", fmt.Errorf("%w: subject_kinds lists at most organization and person", ErrInvalidPartner)
	}
	for i, k := range kinds {
		if k != policy.KindOrganization && k != policy.KindPerson {
			return nil, nil, "", "", fmt.Errorf("%w: unknown subject kind %q", ErrInvalidPartner, k)
		}
		if slices.Contains(kinds[:i], k) {
			return nil, nil, "", "", fmt.Errorf("%w: subject kind %q listed twice", ErrInvalidPartner, k)
		}
	}
	if !validVisibility(vis) {
		return nil, nil, "", "", fmt.Errorf("%w: visibility must be standard or full", ErrInvalidPartner)
	}
	if rate != "" {
		if _, _, err := ParseRate(rate); err != nil {
			return nil, nil, "", "", err
		}
		rate = strings.ToUpper(rate)
	}
	switch role {
	case RolePartner:
		if len(actions) == 0 {
			return nil, nil, "", "", fmt.Errorf("%w: a partner needs at least one action", ErrInvalidPartner)
		}
		if vis == "" {
			vis = VisibilityStandard
		}
	case RoleAdmin, RoleAuditor:
		// Administrators check any action and see everything; auditors
		// check nothing and see everything. Scopes would mislead.
		if len(actions) > 0 || len(kinds) > 0 || vis != "" {
			return nil, nil, "", "", fmt.Errorf("%w: actions, subject_kinds and visibility apply to role partner only", ErrInvalidPartner)
		}
	default:
		return nil, nil, "", "", fmt.Errorf("%w: unknown role %q", ErrInvalidPartner, role)
	}
	return actions, kinds, vis, rate, nil
}

// newCredentialID names a credential.
func newCredentialID(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// keyCredentials parses registered public keys into credentials.
func keyCredentials(jwks [][]byte, now time.Time) ([]Credential, error) {
	if len(jwks) > MaxPublicKeys {
		return nil, fmt.Errorf("%w: at most %d public keys", ErrInvalidPartner, MaxPublicKeys)
	}
	var out []Credential
	for i, raw := range jwks {
		k, canonical, err := access.ParseJWK(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: jwks.keys[%d]: %w", ErrInvalidPartner, i, err)
		}
		if slices.ContainsFunc(out, func(c Credential) bool { return c.ID == k.ID }) {
			return nil, fmt.Errorf("%w: jwks.keys[%d]: kid %q registered twice", ErrInvalidPartner, i, k.ID)
		}
		out = append(out, Credential{ID: k.ID, Kind: CredentialPublicKey, JWK: canonical, CreatedAt: now})
	}
	return out, nil
}

// hash computes a secret hash within the concurrency bound.
func (s *Partners) hash(ctx context.Context, secret string) (string, error) {
	if err := s.acquire(ctx); err != nil {
		return "", err
	}
	defer s.release()
	return access.HashSecret(secret, s.secretCost)
}

func (s *Partners) acquire(ctx context.Context) error {
	select {
	case s.hashing <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Partners) release() { <-s.hashing }

// Create registers a partner and returns it with its secret, which is
// stored only as a hash and never shown again. A partner registered with
// public keys gets no secret ("").
func (s *Partners) Create(ctx context.Context, in NewPartnerInput) (Partner, string, error) {
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || utf8.RuneCountInString(in.Name) > MaxNameLen {
		return Partner{}, "", fmt.Errorf("%w: name is required, at most %d characters", ErrInvalidPartner, MaxNameLen)
	}
	if p := policy.TextProblem(in.Name); p != "" {
		return Partner{}, "", fmt.Errorf("%w: name %s", ErrInvalidPartner, p)
	}
	if in.Role == "" {
		in.Role = RolePartner
	}
	actions, kinds, vis, rate, err := s.scope(in.Role, in.Actions, in.SubjectKinds, in.Visibility, in.RateLimit)
	if err != nil {
		return Partner{}, "", err
	}
	if err := partnerRegion(in.Role, in.Region); err != nil {
		return Partner{}, "", err
	}
	if in.ClientID == "" {
		in.ClientID = "cg_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	} else if len(in.ClientID) > MaxClientIDLen || strings.ContainsAny(in.ClientID, ": \t\r\n/?#%") || !utf8.ValidString(in.ClientID) {
		return Partner{}, "", fmt.Errorf("%w: client_id must be at most %d characters without spaces, colons, slashes or %%", ErrInvalidPartner, MaxClientIDLen)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	var creds []Credential
	var hash string
	if len(in.JWKS) > 0 {
		if in.Secret != "" {
			return Partner{}, "", fmt.Errorf("%w: a partner authenticates with a secret or with public keys, not both", ErrInvalidPartner)
		}
		if creds, err = keyCredentials(in.JWKS, now); err != nil {
			return Partner{}, "", err
		}
	} else {
		if in.Secret == "" {
			if in.Secret, err = access.NewSecret(); err != nil {
				return Partner{}, "", err
			}
		} else if len(in.Secret) < 16 || len(in.Secret) > 512 {
			return Partner{}, "", fmt.Errorf("%w: a client secret needs 16 to 512 characters", ErrInvalidPartner)
		}
		if hash, err = s.hash(ctx, in.Secret); err != nil {
			return Partner{}, "", err
		}
		creds = []Credential{{ID: newCredentialID("sec_"), Kind: CredentialSecret, SecretHash: hash, CreatedAt: now}}
	}
	p := Partner{
		ID: uuid.NewString(), ClientID: in.ClientID, Name: in.Name, Role: in.Role, Actions: actions,
		SecretHash: hash, Status: PartnerActive, CreatedAt: now, UpdatedAt: now, Version: 1,
		Credentials: creds, SubjectKinds: kinds, Visibility: vis, RateLimit: rate, Region: in.Region,
	}
	details := partnerDetails(p)
	details["credentials"] = credentialSummary(creds)
	err = s.audit.do(ctx, ActPartnerCreated, p.ClientID, details, func() error { return s.store.InsertPartner(ctx, p) })
	if err != nil {
		return Partner{}, "", fmt.Errorf("store partner: %w", err)
	}
	return p, in.Secret, nil
}

// partnerDetails is what an audit record says about a partner: its scope,
// never its secrets or hashes.
func partnerDetails(p Partner) map[string]any {
	return map[string]any{
		"client_id": p.ClientID, "name": p.Name, "role": string(p.Role), "actions": nonNil(p.Actions),
		"subject_kinds": nonNil(p.SubjectKinds), "visibility": string(p.Visibility), "rate_limit": p.RateLimit,
		"auth_method": AuthMethod(p), "version": p.Version, "region": p.Region,
	}
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

// credentialSummary names credentials for the audit log without secrets.
func credentialSummary(creds []Credential) []map[string]any {
	out := make([]map[string]any, 0, len(creds))
	for _, c := range creds {
		m := map[string]any{"id": c.ID, "kind": string(c.Kind)}
		if c.ExpiresAt != nil {
			m["expires_at"] = c.ExpiresAt.UTC().Format(time.RFC3339Nano)
		}
		out = append(out, m)
	}
	return out
}

// Authenticate checks a client id and secret and returns the partner and
// the id of the credential that matched.
func (s *Partners) Authenticate(ctx context.Context, clientID, secret string) (Partner, string, error) {
	if err := s.acquire(ctx); err != nil {
		return Partner{}, "", err
	}
	defer s.release()
	p, err := s.store.PartnerByClientID(ctx, clientID)
	if errors.Is(err, ErrNotFound) {
		// Spend the same time as a real check so that timing does not
		// reveal which client ids exist.
		access.SpendVerify(secret, s.secretCost)
		return Partner{}, "", ErrUnknownClient
	}
	if err != nil {
		return Partner{}, "", err
	}
	now := s.now()
	var secrets []Credential
	for _, c := range CredentialsOf(p) {
		if c.Kind == CredentialSecret && c.ValidAt(now) {
			secrets = append(secrets, c)
		}
	}
	if len(secrets) == 0 {
		access.SpendVerify(secret, s.secretCost)
		return Partner{}, "", ErrInvalidClient
	}
	// Newest first: during an overlap most callers have moved on.
	slices.SortStableFunc(secrets, func(a, b Credential) int { return b.CreatedAt.Compare(a.CreatedAt) })
	for _, c := range secrets {
		if access.VerifySecret(c.SecretHash, secret) {
			if p.Status != PartnerActive {
				return Partner{}, "", ErrInvalidClient
			}
			return p, c.ID, nil
		}
	}
	return Partner{}, "", ErrInvalidClient
}

// LoggableClientID is how a client id whose authentication failed with
// err is written to a log: the id when the authentication found its
// partner, "(unknown)" when it found none or did not look (err nil). An
// id that names no partner may be a secret pasted into the wrong field.
func LoggableClientID(id string, err error) string {
	if err == nil || errors.Is(err, ErrUnknownClient) || len(id) > MaxClientIDLen {
		return "(unknown)"
	}
	return id
}

// Active returns the partner with the given client id if it is active,
// trusting a cached copy for at most the cache TTL (and, while the store
// is unavailable, the outage grace past it).
func (s *Partners) Active(ctx context.Context, clientID string) (Partner, error) {
	now := s.now()
	c, ok := s.cache.GetIfPresent(clientID)
	if !ok || now.After(c.expires) {
		var err error
		if c, err = s.reread(ctx, clientID, c, ok, now); err != nil {
			return Partner{}, err
		}
	}
	if errors.Is(c.err, ErrNotFound) {
		return Partner{}, ErrUnknownClient
	}
	if c.err != nil || c.p.Status != PartnerActive {
		return Partner{}, ErrInvalidClient
	}
	return c.p, nil
}

// reread returns clientID's state from the store, c being its expired
// cached entry (if cached). Concurrent callers share one read. With the
// store frozen each read waits the store's whole timeout, and a read per
// request at every expiry held every check that long and queued them on
// the connection pool. So while c is within the outage grace, a caller
// that finds a read already in flight, or the store away at the last
// read, answers from c at once (the read goes on in the background);
// only the caller that starts a read while the store was last seen up
// waits for it, so that with the store up a revocation still takes
// effect within the TTL (and the read's own time).
func (s *Partners) reread(ctx context.Context, clientID string, c cachedPartner, cached bool, now time.Time) (cachedPartner, error) {
	usable := cached && c.err == nil && now.Before(c.confirmed.Add(s.ttl+s.grace))
	s.rereadsMu.Lock()
	r, inFlight := s.rereads[clientID]
	if !inFlight {
		r = &partnerReread{done: make(chan struct{})}
		s.rereads[clientID] = r
		// Not bound to this request: the others may wait on it, and a
		// background refresh outlives it. The store bounds the read.
		go s.read(context.WithoutCancel(ctx), clientID, r, c, cached, now)
	}
	s.rereadsMu.Unlock()
	if usable && (inFlight || c.storeAway) {
		return c, nil
	}
	select {
	case <-r.done:
		return r.entry, r.err
	case <-ctx.Done():
		// No client id: one naming no partner may be a misplaced secret.
		return cachedPartner{}, fmt.Errorf("partner re-read: %w", context.Cause(ctx))
	}
}

// read is reread's store read, started at now; c is the expired entry it
// replaces (if cached). It caches what it learns unless forget dropped
// the partner meanwhile (a change made here must not be undone by a read
// that began before it).
func (s *Partners) read(ctx context.Context, clientID string, r *partnerReread, c cachedPartner, cached bool, now time.Time) {
	defer func() {
		// A panic in the read fails its callers, as it failed the one
		// request when each made its own read, rather than the replica.
		if v := recover(); v != nil {
			r.entry, r.err = cachedPartner{}, fmt.Errorf("partner re-read panicked: %v", v)
		}
		s.rereadsMu.Lock()
		if s.rereads[clientID] == r {
			delete(s.rereads, clientID)
			if r.err == nil {
				s.cache.Set(clientID, r.entry)
			}
		}
		s.rereadsMu.Unlock()
		close(r.done)
	}()
	p, err := s.store.PartnerByClientID(ctx, clientID)
	switch {
	case err == nil || errors.Is(err, ErrNotFound):
		r.entry = cachedPartner{p: p, err: err, expires: now.Add(s.ttl), confirmed: now}
	case cached && c.err == nil && errors.Is(err, ErrStoreUnavailable) && now.Before(c.confirmed.Add(s.ttl+s.grace)):
		// The store is away: trust what it last said, for a while,
		// and ask again only after another TTL.
		c.expires, c.storeAway = now.Add(s.ttl), true
		r.entry = c
	default:
		r.err = err
	}
}

// AssertionKeys returns an active partner and its public keys valid now,
// for verifying a client assertion (private_key_jwt). A partner that is
// unknown, revoked or holds no valid key is ErrInvalidClient.
func (s *Partners) AssertionKeys(ctx context.Context, clientID string) (Partner, []access.PublicKey, error) {
	p, err := s.Active(ctx, clientID)
	if err != nil {
		return Partner{}, nil, err
	}
	keys := PublicKeysOf(p, s.now())
	if len(keys) == 0 {
		return Partner{}, nil, ErrInvalidClient
	}
	return p, keys, nil
}

// List returns up to limit partners with client id after after, in
// client id order. There are at most a few thousand partners, so the
// page is cut here rather than in every store.
func (s *Partners) List(ctx context.Context, after string, limit int) ([]Partner, error) {
	all, err := s.store.ListPartners(ctx)
	if err != nil {
		return nil, err
	}
	if limit <= 0 || limit > MaxPage {
		limit = MaxPage
	}
	slices.SortFunc(all, func(a, b Partner) int { return cmp.Compare(a.ClientID, b.ClientID) })
	if after != "" {
		i, found := slices.BinarySearchFunc(all, after, func(p Partner, id string) int { return cmp.Compare(p.ClientID, id) })
		if found {
			i++
		}
		all = all[i:]
	}
	if len(all) > limit {
		all = all[:limit]
	}
	return all, nil
}

// Get returns one partner by client id.
func (s *Partners) Get(ctx context.Context, clientID string) (Partner, error) {
	return s.store.PartnerByClientID(ctx, clientID)
}

// PartnerPatch changes a partner's name or scope; nil leaves a field.
type PartnerPatch struct {
	Name         *string
	Actions      *[]string
	SubjectKinds *[]policy.SubjectKind
	Visibility   *Visibility
	RateLimit    *string
	// Region: "" returns the partner to national measures only.
	Region *string
}

// Update changes a partner's name or scope. The change reaches every
// replica's checks within the partner cache TTL.
func (s *Partners) Update(ctx context.Context, clientID string, patch PartnerPatch) (Partner, error) {
	p, err := s.store.PartnerByClientID(ctx, clientID)
	if err != nil {
		return Partner{}, err
	}
	if p.Status == PartnerRevoked {
		return Partner{}, fmt.Errorf("partner %s: %w", clientID, ErrPartnerRevoked)
	}
	var changed []string
	if patch.Name != nil {
		name := strings.TrimSpace(*patch.Name)
		if name == "" || utf8.RuneCountInString(name) > MaxNameLen {
			return Partner{}, fmt.Errorf("%w: name is required, at most %d characters", ErrInvalidPartner, MaxNameLen)
		}
		if p := policy.TextProblem(name); p != "" {
			return Partner{}, fmt.Errorf("%w: name %s", ErrInvalidPartner, p)
		}
		p.Name = name
		changed = append(changed, "name")
	}
	if patch.Actions != nil {
		p.Actions = *patch.Actions
		changed = append(changed, "actions")
	}
	if patch.SubjectKinds != nil {
		p.SubjectKinds = *patch.SubjectKinds
		changed = append(changed, "subject_kinds")
	}
	if patch.Visibility != nil {
		p.Visibility = *patch.Visibility
		changed = append(changed, "visibility")
	}
	if patch.RateLimit != nil {
		p.RateLimit = *patch.RateLimit
		changed = append(changed, "rate_limit")
	}
	if patch.Region != nil {
		if err := partnerRegion(p.Role, *patch.Region); err != nil {
			return Partner{}, err
		}
		p.Region = *patch.Region
		changed = append(changed, "region")
	}
	if len(changed) == 0 {
		return Partner{}, fmt.Errorf("%w: nothing to change", ErrInvalidPartner)
	}
	if p.Actions, p.SubjectKinds, p.Visibility, p.RateLimit, err = s.scope(p.Role, p.Actions, p.SubjectKinds, p.Visibility, p.RateLimit); err != nil {
		return Partner{}, err
	}
	p.UpdatedAt = s.now().UTC().Truncate(time.Microsecond)
	p.Version++
	details := partnerDetails(p)
	details["changed"] = changed
	if err := s.audit.do(ctx, ActPartnerUpdated, clientID, details, func() error { return s.store.UpdatePartner(ctx, p) }); err != nil {
		return Partner{}, fmt.Errorf("update partner: %w", err)
	}
	s.forget(clientID)
	return p, nil
}

// RotateInput says how to replace a partner's credentials.
type RotateInput struct {
	// Overlap is how long the credentials being replaced keep working (0:
	// they stop now, with the tokens issued for them).
	Overlap time.Duration
	// JWKS, when set, replaces the credentials with these public keys;
	// otherwise a new secret is generated.
	JWKS [][]byte
}

// Rotate replaces a partner's credentials: the new ones work at once, the
// current ones keep working until the overlap ends, and credentials still
// in an earlier overlap end now (at most two generations are valid).
// It returns the new secret ("" when keys were registered).
func (s *Partners) Rotate(ctx context.Context, clientID string, in RotateInput) (Partner, string, error) {
	if in.Overlap < 0 || in.Overlap > MaxOverlap {
		return Partner{}, "", fmt.Errorf("%w: overlap must be between 0 and %s", ErrInvalidPartner, MaxOverlap)
	}
	p, err := s.store.PartnerByClientID(ctx, clientID)
	if err != nil {
		return Partner{}, "", err
	}
	if p.Status == PartnerRevoked {
		return Partner{}, "", fmt.Errorf("partner %s: %w", clientID, ErrPartnerRevoked)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	var fresh []Credential
	var secret, hash string
	if len(in.JWKS) > 0 {
		if fresh, err = keyCredentials(in.JWKS, now); err != nil {
			return Partner{}, "", err
		}
	} else {
		if secret, err = access.NewSecret(); err != nil {
			return Partner{}, "", err
		}
		if hash, err = s.hash(ctx, secret); err != nil {
			return Partner{}, "", err
		}
		fresh = []Credential{{ID: newCredentialID("sec_"), Kind: CredentialSecret, SecretHash: hash, CreatedAt: now}}
	}
	// A token names the id of the credential it was issued for, and a
	// key's id is the partner's own kid: a new key under a kid this
	// partner held would bring the tokens of the key it replaced back to
	// life. So the kid of any key still listed, valid, retiring or ended,
	// is refused, whatever the overlap.
	old := CredentialsOf(p)
	forgotten := now.Add(-EndedKeyMemory)
	for i, f := range fresh {
		if slices.ContainsFunc(old, func(c Credential) bool { return c.ID == f.ID && (c.ExpiresAt == nil || c.ExpiresAt.After(forgotten)) }) {
			return Partner{}, "", fmt.Errorf("%w: jwks.keys[%d]: kid %q was already registered to this partner (keys ended in the last %s included); new keys need new kids",
				ErrInvalidPartner, i, f.ID, EndedKeyMemory)
		}
	}
	until := now.Add(in.Overlap)
	var retired, ended []Credential
	for _, c := range old {
		switch {
		case c.ExpiresAt == nil && in.Overlap > 0:
			c.ExpiresAt = &until
			retired = append(retired, c)
		case c.Kind == CredentialPublicKey:
			// Retired at once, or still in an earlier overlap: it ends
			// now, and stays listed (ended) for EndedKeyMemory so that
			// its kid is not registered again while its tokens may live.
			if c.ValidAt(now) {
				c.ExpiresAt = &now
			}
			if c.ExpiresAt.After(forgotten) {
				ended = append(ended, c)
			}
		}
		// A secret retired at once or still in an earlier overlap ends
		// now and is dropped: its id was made here and never returns.
	}
	slices.SortStableFunc(ended, func(a, b Credential) int { return b.ExpiresAt.Compare(*a.ExpiresAt) })
	if len(ended) > maxEndedKeys {
		ended = ended[:maxEndedKeys]
	}
	p.Credentials = slices.Concat(fresh, retired, ended)
	p.SecretHash = hash
	p.UpdatedAt = now
	p.Version++
	details := map[string]any{
		"client_id": clientID, "overlap_seconds": int64(in.Overlap / time.Second), "auth_method": AuthMethod(p),
		"new_credentials": credentialSummary(fresh), "retiring_credentials": credentialSummary(retired),
		"version": p.Version,
	}
	if err := s.audit.do(ctx, ActCredentialRotated, clientID, details, func() error { return s.store.UpdatePartner(ctx, p) }); err != nil {
		return Partner{}, "", fmt.Errorf("rotate credentials: %w", err)
	}
	s.forget(clientID)
	return p, secret, nil
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
	if p.Role == RoleAdmin {
		// Revoking the last active administrator would lock everyone out:
		// the bootstrap credential is not recreated for an existing id.
		// This early refusal writes no act; the store refuses again, in
		// the revocation's own transaction, when another administrator was
		// revoked since this count (UpdatePartner's ErrLastAdmin).
		all, err := s.store.ListPartners(ctx)
		if err != nil {
			return Partner{}, err
		}
		active := 0
		for _, q := range all {
			if q.Role == RoleAdmin && q.Status == PartnerActive {
				active++
			}
		}
		if active <= 1 {
			return Partner{}, fmt.Errorf("%w: %s is the last active administrator", ErrLastAdmin, clientID)
		}
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	p.Status, p.RevokedAt, p.UpdatedAt = PartnerRevoked, &now, now
	p.Version++
	details := map[string]any{"client_id": clientID, "name": p.Name, "role": string(p.Role), "version": p.Version}
	if err := s.audit.do(ctx, ActPartnerRevoked, clientID, details, func() error { return s.store.UpdatePartner(ctx, p) }); err != nil {
		if errors.Is(err, ErrLastAdmin) {
			return Partner{}, err // the same refusal as the early one
		}
		return Partner{}, fmt.Errorf("revoke partner: %w", err)
	}
	s.forget(clientID)
	return p, nil
}

// forget drops a partner from this replica's cache so that a change made
// here applies here at once; other replicas see it within the TTL.
func (s *Partners) forget(clientID string) {
	s.rereadsMu.Lock()
	defer s.rereadsMu.Unlock()
	delete(s.rereads, clientID)
	s.cache.Invalidate(clientID)
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
