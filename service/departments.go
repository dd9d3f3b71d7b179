package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/credgate/credgate/policy"
)

// Departments subscribe by measure authority. The departments responsible
// for measures (实施部门: a measure's authority in the catalogue) must learn
// when a subject comes under or leaves the measures they implement, for any
// subject, not only those they checked. A partner registered for such a
// department holds a subscription to one or more authorities, spelled as
// the catalogue spells them; the fan-out (events.go) then gives it, by
// webhook and pull feed like any partner's, an event for every change that
// brings a measure of those authorities into or out of force, naming those
// measures, decided in the department's region as its own check would be.

// Errors of authority subscriptions.
var (
	// ErrUnknownAuthority: an authority no measure of the catalogue names.
	ErrUnknownAuthority = errors.New("unknown authority")
	// ErrInvalidSubscription: a subscription that cannot be held (too
	// many authorities, or a partner that is not a checking partner).
	ErrInvalidSubscription = errors.New("invalid subscription")
)

// MaxAuthorities caps the authorities of one subscription: a department
// answers for a few, and the fan-out reads every subscription per batch.
const MaxAuthorities = 64

// SubscribedAuthority is the subscription reason of a department's event.
const SubscribedAuthority = "authority"

// ActAuthoritiesSet records a change of a department's subscription.
const ActAuthoritiesSet Act = "authorities_set"

// AuthoritySubscription is one authority a partner is subscribed to.
type AuthoritySubscription struct {
	Partner   string
	Authority string
	CreatedAt time.Time
}

// AuthorityStore keeps departments' subscriptions by authority.
type AuthorityStore interface {
	// SetAuthorities replaces partner's authorities by authorities in one
	// transaction, keeping the creation time of those it keeps.
	SetAuthorities(ctx context.Context, partner string, authorities []string, at time.Time) error
	// Authorities returns partner's subscriptions, ordered by authority.
	Authorities(ctx context.Context, partner string) ([]AuthoritySubscription, error)
	// AuthoritySubscriptions returns every subscription, ordered by
	// partner then authority.
	AuthoritySubscriptions(ctx context.Context) ([]AuthoritySubscription, error)
}

// DepartmentSubscription is a partner's subscription as the API shows it.
type DepartmentSubscription struct {
	Partner     string    `json:"partner"`
	Authorities []string  `json:"authorities"`
	UpdatedAt   time.Time `json:"updated_at,omitzero"`
}

// PartnerReader reads one partner.
type PartnerReader interface {
	PartnerByClientID(ctx context.Context, clientID string) (Partner, error)
}

// Departments administers subscriptions by authority.
type Departments struct {
	store    AuthorityStore
	partners PartnerReader
	known    map[string]bool
	audit    *Audit
	now      func() time.Time
}

// DepartmentsOption configures Departments.
type DepartmentsOption func(*Departments)

// WithDepartmentsAudit records subscription changes in the evidence log.
func WithDepartmentsAudit(a *Audit) DepartmentsOption { return func(d *Departments) { d.audit = a } }

// WithDepartmentsClock sets the clock (tests).
func WithDepartmentsClock(now func() time.Time) DepartmentsOption {
	return func(d *Departments) { d.now = now }
}

// NewDepartments returns the subscription service; authorities are
// validated against cat's measures.
func NewDepartments(store AuthorityStore, partners PartnerReader, cat *policy.Catalog, opts ...DepartmentsOption) *Departments {
	d := &Departments{store: store, partners: partners, known: map[string]bool{}, now: time.Now}
	for _, a := range CatalogAuthorities(cat) {
		d.known[a] = true
	}
	for _, o := range opts {
		o(d)
	}
	return d
}

// CatalogAuthorities returns the distinct authorities of cat's measures,
// sorted: the values a subscription may name.
func CatalogAuthorities(cat *policy.Catalog) []string {
	var out []string
	for _, m := range cat.Measures() {
		if m.Authority != "" && !slices.Contains(out, m.Authority) {
			out = append(out, m.Authority)
		}
	}
	slices.Sort(out)
	return out
}

// Get returns the partner's subscription (no authorities when it has
// none); ErrNotFound when there is no such partner.
func (d *Departments) Get(ctx context.Context, clientID string) (DepartmentSubscription, error) {
	if _, err := d.partners.PartnerByClientID(ctx, clientID); err != nil {
		return DepartmentSubscription{}, err
	}
	return d.read(ctx, clientID)
}

func (d *Departments) read(ctx context.Context, clientID string) (DepartmentSubscription, error) {
	subs, err := d.store.Authorities(ctx, clientID)
	if err != nil {
		return DepartmentSubscription{}, err
	}
	out := DepartmentSubscription{Partner: clientID, Authorities: make([]string, 0, len(subs))}
	for _, s := range subs {
		out.Authorities = append(out.Authorities, s.Authority)
		if s.CreatedAt.After(out.UpdatedAt) {
			out.UpdatedAt = s.CreatedAt
		}
	}
	return out, nil
}

// Set replaces the partner's authorities (none ends the subscription).
// Every authority must be one the catalogue names, exactly as spelled
// there; nothing is changed otherwise. The act is recorded in the evidence
// log before it is made.
func (d *Departments) Set(ctx context.Context, clientID string, authorities []string) (DepartmentSubscription, error) {
	if len(authorities) > MaxAuthorities {
		return DepartmentSubscription{}, fmt.Errorf("%w: %d authorities, at most %d", ErrInvalidSubscription, len(authorities), MaxAuthorities)
	}
	var unknown []string
	clean := make([]string, 0, len(authorities))
	for _, a := range authorities {
		if !d.known[a] {
			unknown = append(unknown, a)
			continue
		}
		if !slices.Contains(clean, a) {
			clean = append(clean, a)
		}
	}
	if len(unknown) > 0 {
		return DepartmentSubscription{}, fmt.Errorf("%w: %s (GET /v1/catalog lists each measure's authority, spelled as a subscription must spell it)",
			ErrUnknownAuthority, quoteAll(unknown))
	}
	slices.Sort(clean)
	p, err := d.partners.PartnerByClientID(ctx, clientID)
	if err != nil {
		return DepartmentSubscription{}, err
	}
	if len(clean) > 0 && (p.Role != RolePartner || p.Status != PartnerActive) {
		return DepartmentSubscription{}, fmt.Errorf("%w: %s is not an active checking partner", ErrInvalidSubscription, clientID)
	}
	now := d.now().UTC().Truncate(time.Microsecond)
	err = d.audit.do(ctx, ActAuthoritiesSet, clientID, map[string]any{"authorities": clean}, func() error {
		return d.store.SetAuthorities(ctx, clientID, clean, now)
	})
	if err != nil {
		return DepartmentSubscription{}, err
	}
	return d.read(ctx, clientID)
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
