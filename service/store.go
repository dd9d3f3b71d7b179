// Package service holds credgate's use cases: checks, entry administration and
// partners. It joins the pure domain (policy) to storage, evidence and cache
// through interfaces declared here, and is shared by the HTTP gateway and the
// command line.
package service

import (
	"context"
	"errors"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/policy"
)

// Storage errors every adapter returns (wrapped) so that callers can tell
// them apart without knowing the database.
var (
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique key already exists, or an optimistic update lost
	// the race (the stored version is not the expected one).
	ErrConflict = errors.New("conflict")
)

// Role of a credential holder.
type Role string

// Roles.
const (
	RoleAdmin   Role = "admin"
	RolePartner Role = "partner"
	RoleAuditor Role = "auditor"
)

// PartnerStatus is whether a partner's credentials work.
type PartnerStatus string

// Partner states.
const (
	PartnerActive  PartnerStatus = "active"
	PartnerRevoked PartnerStatus = "revoked"
)

// Partner is a system allowed to call credgate (a licensing office, a
// tendering platform, a bank) or an administrator.
type Partner struct {
	ID       string
	ClientID string
	Name     string
	Role     Role
	// Actions the partner may check; empty for admins and auditors.
	Actions []string
	// SecretHash is the PHC-encoded hash of the current client secret
	// ("" for a partner that authenticates with a public key). Credentials
	// is authoritative; SecretHash mirrors it for rows written before
	// credentials existed.
	SecretHash string
	Status     PartnerStatus
	CreatedAt  time.Time
	UpdatedAt  time.Time
	RevokedAt  *time.Time
	Version    int64
	// Credentials are how the partner proves who it is at the token
	// endpoint: hashed client secrets or registered public keys. After a
	// rotation the old credential stays, with ExpiresAt, for the overlap
	// window.
	Credentials []Credential
	// SubjectKinds the partner may check; empty means both kinds.
	SubjectKinds []policy.SubjectKind
	// Visibility is how much of an entry the partner's answers show.
	Visibility Visibility
	// RateLimit overrides the default request quota ("6000-M" style:
	// requests per S, M, H or D); empty means the default.
	RateLimit string
	// Region is the partner's jurisdiction, a GB/T 2260 code; measures
	// scoped to a region apply only to partners within it, and a partner
	// with no region gets national measures only (policy.Scope).
	Region string
}

// EntryFilter selects entries for listing. Results are ordered by ID.
type EntryFilter struct {
	Subject string // normalised subject id; empty for any
	List    string // list id; empty for any
	After   string // return entries with ID > After (keyset pagination)
	Limit   int    // at most this many; adapters cap it at MaxPage
}

// MaxPage caps every listing.
const MaxPage = 1000

// EntryStore keeps list entries.
type EntryStore interface {
	// InsertEntries stores all entries in one transaction, or none of them.
	// A duplicate ID is ErrConflict.
	InsertEntries(ctx context.Context, entries []policy.Entry) error
	// GetEntry returns ErrNotFound when there is no such entry.
	GetEntry(ctx context.Context, id string) (policy.Entry, error)
	// UpdateEntry replaces the entry whose stored Version is e.Version-1;
	// otherwise ErrConflict (or ErrNotFound when it does not exist).
	UpdateEntry(ctx context.Context, e policy.Entry) error
	ListEntries(ctx context.Context, f EntryFilter) ([]policy.Entry, error)
	// EntriesAffecting returns every entry whose subject is subject or that
	// names subject among its responsible persons, whatever its status.
	EntriesAffecting(ctx context.Context, subject string) ([]policy.Entry, error)
}

// PartnerStore keeps partners and their hashed credentials.
type PartnerStore interface {
	// InsertPartner: a duplicate ID or ClientID is ErrConflict.
	InsertPartner(ctx context.Context, p Partner) error
	PartnerByClientID(ctx context.Context, clientID string) (Partner, error)
	ListPartners(ctx context.Context) ([]Partner, error)
	// UpdatePartner is optimistic like UpdateEntry.
	UpdatePartner(ctx context.Context, p Partner) error
}

// EvidenceStore keeps the evidence log.
type EvidenceStore interface {
	// AppendBatch durably commits recs in one transaction, assigning them
	// consecutive indexes in order, and returns the first index. Nothing
	// is committed on error. A duplicate record ID is ErrConflict.
	AppendBatch(ctx context.Context, recs []evidence.Record) (first uint64, err error)
	// Record returns evidence.ErrNotFound when there is no such record.
	Record(ctx context.Context, id string) (evidence.Record, error)
}

// Store is everything credgate keeps. Every adapter implements it and
// passes the same conformance suite (adapters/storetest).
type Store interface {
	EntryStore
	// EntryLookup is EntriesAffecting as the check path reads it
	// (freshness.go); a cache decorates it.
	EntryLookup
	PartnerStore
	EvidenceStore
	// TreeStore is the Merkle tree AppendBatch grows beside the records,
	// with its checkpoints and keys (evidence/log.go).
	evidence.TreeStore
	// LifecycleStore keeps entry history, proceedings and violation
	// records (lifecycle.go).
	LifecycleStore
	// EntryLoader stages bulk loads and swaps them in whole (bulkimport.go).
	EntryLoader
	// ScreeningStore keeps screening jobs' progress (screening.go).
	ScreeningStore
	// ActReader reads administrative acts back from the evidence log
	// (audit.go).
	ActReader
	// Ping reports whether the database answers (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}
