package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/credgate/credgate/policy"
)

// Errors of upstream source snapshots.
var (
	// ErrSnapshotRejected: a snapshot has invalid items; nothing of it was
	// applied and the previous snapshot stays in force.
	ErrSnapshotRejected = errors.New("snapshot rejected")
	// ErrSnapshotTooLarge: more items than MaxSourceItems.
	ErrSnapshotTooLarge = errors.New("snapshot too large")
	// ErrInvalidSource: a source name or list set that cannot be used.
	ErrInvalidSource = errors.New("invalid source")
)

// Limits on upstream sources.
const (
	// MaxSourceItems caps one snapshot (it is applied in one transaction).
	MaxSourceItems = MaxImport
	// MaxSourceNameLen caps a source name.
	MaxSourceNameLen = 64
	// maxSourceError caps the error text kept for a source.
	maxSourceError = 1000
)

// SourceItem is one record of an upstream snapshot, mapped to an entry.
type SourceItem struct {
	// Key is the upstream's own identifier of the record, if it has one;
	// it keeps two records with the same content apart.
	Key string
	// Line is the record's position in the payload (1-based), for errors.
	Line  int
	Input EntryInput
}

// SourceSnapshot is the whole of what a source delivered in one fetch.
type SourceSnapshot struct {
	Source string
	// Lists are the lists the source may feed; an item on another list
	// rejects the snapshot.
	Lists []string
	Items []SourceItem
	// FetchedAt is when the fetch began: the snapshot is at least that
	// fresh.
	FetchedAt time.Time
}

// SourceEntry is a prepared item: its content-derived id and its entry.
type SourceEntry struct {
	ItemID string
	Entry  policy.Entry
}

// SourceApply is what the store applies in one transaction: the items
// become the source's whole set of entries. Items already held are kept,
// new ones inserted, and the entries of items no longer delivered revoked
// at At with Reason.
type SourceApply struct {
	Source   string
	Revision string
	Items    []SourceEntry
	At       time.Time
	Reason   string
}

// SourceApplied reports what an apply changed.
type SourceApplied struct {
	Revision string
	// Unchanged: the revision was already applied; only synced_at moved.
	Unchanged            bool
	Added, Removed, Kept int
	// Subjects whose answers the apply changed (subjects and responsible
	// persons of added and revoked entries).
	Subjects []string
}

// SourceState is what the store keeps about a source.
type SourceState struct {
	Name        string
	Revision    string
	Entries     int
	AppliedAt   time.Time // zero when no snapshot was ever applied
	SyncedAt    time.Time // last time upstream confirmed the revision
	LastError   string
	LastErrorAt time.Time
}

// SourceStore keeps upstream sources' snapshots and states.
type SourceStore interface {
	// SourceState returns ErrNotFound for a source never seen.
	SourceState(ctx context.Context, name string) (SourceState, error)
	// ApplySource applies a snapshot in one transaction, all or nothing,
	// serialised with other applies of the same source (in any process).
	ApplySource(ctx context.Context, a SourceApply) (SourceApplied, error)
	// RecordSourceError notes a failed fetch or a rejected snapshot; the
	// applied snapshot is untouched.
	RecordSourceError(ctx context.Context, name string, at time.Time, msg string) error
}

// SnapshotError lists the invalid items of a rejected snapshot.
type SnapshotError struct {
	Source string
	Lines  []LineError
}

func (e *SnapshotError) Error() string {
	first := ""
	if len(e.Lines) > 0 {
		first = "; first: " + e.Lines[0].Error()
	}
	return fmt.Sprintf("%v: source %s: %d invalid items, nothing applied%s", ErrSnapshotRejected, e.Source, len(e.Lines), first)
}

// Unwrap lets errors.Is find ErrSnapshotRejected.
func (e *SnapshotError) Unwrap() error { return ErrSnapshotRejected }

// Sources applies upstream snapshots as wholes.
type Sources struct {
	store   SourceStore
	prepare *Entries
	now     func() time.Time
	changed func(subjects ...string)
}

// SourcesOption configures Sources.
type SourcesOption func(*Sources)

// WithSourcesChangeHook is called with the subjects an applied snapshot
// changed, after it is stored: caches invalidate on it.
func WithSourcesChangeHook(fn func(subjects ...string)) SourcesOption {
	return func(s *Sources) { s.changed = fn }
}

// WithSourcesClock sets the clock (tests).
func WithSourcesClock(now func() time.Time) SourcesOption {
	return func(s *Sources) { s.now = now }
}

// NewSources returns the source snapshot service.
func NewSources(store SourceStore, cat *policy.Catalog, opts ...SourcesOption) *Sources {
	s := &Sources{store: store, now: time.Now, changed: func(...string) {}}
	for _, o := range opts {
		o(s)
	}
	s.prepare = NewEntries(nil, cat, WithEntriesClock(s.now))
	return s
}

// ValidateSource checks a source's name and lists against the catalogue.
func (s *Sources) ValidateSource(name string, lists []string) error {
	if name == "" || len(name) > MaxSourceNameLen {
		return fmt.Errorf("%w: name must be 1-%d characters", ErrInvalidSource, MaxSourceNameLen)
	}
	for _, r := range name {
		if !(r == '-' || r == '_' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z')) {
			return fmt.Errorf("%w: name %q: only a-z, 0-9, '-' and '_'", ErrInvalidSource, name)
		}
	}
	if len(lists) == 0 {
		return fmt.Errorf("%w: source %s feeds no list", ErrInvalidSource, name)
	}
	for _, l := range lists {
		if _, ok := s.prepare.catalog.List(l); !ok {
			return fmt.Errorf("%w: source %s: %w %q", ErrInvalidSource, name, policy.ErrUnknownList, l)
		}
	}
	return nil
}

// Apply validates every item of snap and makes them the source's whole set
// of entries, or, when any item is invalid, applies nothing and records the
// error: the previous snapshot stays in force.
func (s *Sources) Apply(ctx context.Context, snap SourceSnapshot) (SourceApplied, error) {
	apply, err := s.Prepare(snap)
	if err != nil {
		s.RecordFailure(ctx, snap.Source, err)
		return SourceApplied{}, err
	}
	return s.Commit(ctx, apply)
}

// Prepare validates every item of snap against the catalogue and the
// source's lists and returns what Commit stores, or every invalid item
// (a *SnapshotError). It stores nothing, so that a caller can count an
// invalid payload as a failure of the upstream before touching the store.
func (s *Sources) Prepare(snap SourceSnapshot) (SourceApply, error) {
	if err := s.ValidateSource(snap.Source, snap.Lists); err != nil {
		return SourceApply{}, err
	}
	return s.build(snap)
}

// Commit stores a prepared snapshot in one transaction and reports the
// subjects it changed to the change hook. A store failure is recorded as
// the source's last error.
func (s *Sources) Commit(ctx context.Context, apply SourceApply) (SourceApplied, error) {
	res, err := s.store.ApplySource(ctx, apply)
	if err != nil {
		err = fmt.Errorf("apply snapshot of source %s: %w", apply.Source, err)
		s.RecordFailure(ctx, apply.Source, err)
		return SourceApplied{}, err
	}
	if len(res.Subjects) > 0 {
		s.changed(res.Subjects...)
	}
	return res, nil
}

// build prepares every item, or returns every invalid one.
func (s *Sources) build(snap SourceSnapshot) (SourceApply, error) {
	if len(snap.Items) > MaxSourceItems {
		return SourceApply{}, fmt.Errorf("%w: source %s delivered %d items, at most %d", ErrSnapshotTooLarge,
			snap.Source, len(snap.Items), MaxSourceItems)
	}
	at := snap.FetchedAt
	if at.IsZero() {
		at = s.now()
	}
	apply := SourceApply{Source: snap.Source, At: at.UTC().Truncate(time.Microsecond), Items: make([]SourceEntry, 0, len(snap.Items))}
	seen := make(map[string]bool, len(snap.Items))
	var bad []LineError
	for i, it := range snap.Items {
		line := it.Line
		if line == 0 {
			line = i + 1
		}
		if !slices.Contains(snap.Lists, it.Input.List) {
			bad = append(bad, LineError{Line: line, Err: fmt.Errorf("list %q is not one this source may feed (%s)",
				it.Input.List, strings.Join(snap.Lists, ", "))})
			continue
		}
		e, err := s.prepare.Prepare(it.Input)
		if err != nil {
			bad = append(bad, LineError{Line: line, Err: err})
			continue
		}
		id := itemID(snap.Source, it.Key, e)
		if seen[id] {
			continue // the same record twice is one item
		}
		seen[id] = true
		e.ID = id
		apply.Items = append(apply.Items, SourceEntry{ItemID: id, Entry: e})
	}
	if len(bad) > 0 {
		return SourceApply{}, &SnapshotError{Source: snap.Source, Lines: bad}
	}
	ids := make([]string, 0, len(apply.Items))
	for _, it := range apply.Items {
		ids = append(ids, it.ItemID)
	}
	slices.Sort(ids)
	h := sha256.New()
	for _, id := range ids {
		h.Write([]byte(id))
		h.Write([]byte{0})
	}
	apply.Revision = hex.EncodeToString(h.Sum(nil))[:32]
	apply.Reason = fmt.Sprintf("withdrawn by upstream source %s (snapshot %s)", snap.Source, apply.Revision)
	return apply, nil
}

// itemID derives an item's id from its source, upstream key and content,
// so that the same record keeps its entry across snapshots and a changed
// record becomes a new entry (the old one is revoked, its history kept).
func itemID(source, key string, e policy.Entry) string {
	h := sha256.New()
	field := func(s string) {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	field(source)
	field(key)
	field(e.Subject.Value)
	field(e.List)
	field(e.OriginatingDepartment)
	field(e.Reason)
	field(e.LegalBasis)
	field(e.DecidedAt.UTC().Format(time.RFC3339Nano))
	field(e.PublishedAt.UTC().Format(time.RFC3339Nano))
	for _, r := range e.EvidenceRefs {
		field("ref:" + r)
	}
	for _, p := range e.ResponsiblePersons {
		field("person:" + string(p.Role) + ":" + p.ID)
	}
	return "src_" + hex.EncodeToString(h.Sum(nil))[:32]
}

// RecordFailure keeps err as the source's last error (trimmed); the
// snapshot in force is untouched. Failing to record is only logged by the
// caller's error: the source's state in memory still says it failed.
func (s *Sources) RecordFailure(ctx context.Context, name string, err error) {
	msg := err.Error()
	if len(msg) > maxSourceError {
		msg = strings.ToValidUTF8(msg[:maxSourceError], "") + "…"
	}
	// The failure is worth keeping even if the caller has given up.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = s.store.RecordSourceError(ctx, name, s.now().UTC(), msg)
}

// State returns what the store keeps about a source.
func (s *Sources) State(ctx context.Context, name string) (SourceState, error) {
	return s.store.SourceState(ctx, name)
}

// SubjectChange is one row of a store's change log: a subject whose
// answers an entry change may have altered. ID is unique per row, so that
// a reader that is handed a row twice can tell.
type SubjectChange struct {
	ID      int64
	Subject string
}
