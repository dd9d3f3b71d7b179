package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/credgate/credgate/access"
	"github.com/credgate/credgate/policy"
)

// Errors of entry administration.
var (
	ErrImportRejected = errors.New("import rejected")
	ErrImportTooLarge = errors.New("import too large")
	// ErrVersionMismatch: the entry changed since the caller read it
	// (If-Match names another version).
	ErrVersionMismatch = errors.New("the entry changed since it was read")
)

// MaxImport caps the entries of one import (one transaction).
const MaxImport = 100_000

// ErrDecidedInFuture: an entry's decided_at is later than now. The
// department's decision has been taken when the entry is submitted; only
// its publication (published_at) may lie ahead. It is wrapped together
// with policy.ErrInvalidEntry.
var ErrDecidedInFuture = errors.New("decided_at is in the future")

// DecisionSkew is how far ahead of credgate's clock a decision time may
// be: the department's clock is its own, and the minute tolerated on
// partners' client assertions (access.AssertionSkew) is allowed here too.
const DecisionSkew = access.AssertionSkew

// decidedBy refuses a decision time d later than now (with DecisionSkew).
func decidedBy(d, now time.Time) error {
	if d.After(now.Add(DecisionSkew)) {
		return fmt.Errorf("%w: %w: decided_at %s is after the current time %s: a decision is dated when it was taken (published_at may be later)",
			policy.ErrInvalidEntry, ErrDecidedInFuture, d.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// EntryInput is an entry as an originating department submits it.
type EntryInput struct {
	Subject               string                     `json:"subject_id"`
	List                  string                     `json:"list"`
	OriginatingDepartment string                     `json:"originating_department"`
	Reason                string                     `json:"reason"`
	LegalBasis            string                     `json:"legal_basis"`
	EvidenceRefs          []string                   `json:"evidence_refs,omitempty"`
	DecidedAt             time.Time                  `json:"decided_at"`
	PublishedAt           time.Time                  `json:"published_at"`
	ResponsiblePersons    []policy.ResponsiblePerson `json:"responsible_persons,omitempty"`
	// ParticularlySerious marks a 情节特别严重 case (some lists never let it
	// be repaired).
	ParticularlySerious bool `json:"particularly_serious,omitempty"`
}

// EntryPatch changes the editable fields of an entry; nil leaves a field.
type EntryPatch struct {
	OriginatingDepartment *string                     `json:"originating_department,omitempty"`
	Reason                *string                     `json:"reason,omitempty"`
	LegalBasis            *string                     `json:"legal_basis,omitempty"`
	EvidenceRefs          *[]string                   `json:"evidence_refs,omitempty"`
	DecidedAt             *time.Time                  `json:"decided_at,omitempty"`
	PublishedAt           *time.Time                  `json:"published_at,omitempty"`
	ResponsiblePersons    *[]policy.ResponsiblePerson `json:"responsible_persons,omitempty"`
}

// EntriesStore is what the entry service writes to: the entries, and the
// lifecycle's changes, which an import that closes earlier entries writes
// with its new ones in one transaction.
type EntriesStore interface {
	EntryStore
	LifecycleStore
	EntryLoader
}

// apply copies the patch's fields onto e, the one place both an edit
// (Entries.Patch) and an upheld objection's correction change an entry.
// Slices are copied, so the patch and the entry share no backing array.
// The caller re-applies the list rule.
func (p EntryPatch) apply(e policy.Entry) policy.Entry {
	if p.OriginatingDepartment != nil {
		e.OriginatingDepartment = strings.TrimSpace(*p.OriginatingDepartment)
	}
	if p.Reason != nil {
		e.Reason = strings.TrimSpace(*p.Reason)
	}
	if p.LegalBasis != nil {
		e.LegalBasis = strings.TrimSpace(*p.LegalBasis)
	}
	if p.EvidenceRefs != nil {
		e.EvidenceRefs = slices.Clone(*p.EvidenceRefs)
	}
	if p.DecidedAt != nil {
		e.DecidedAt = p.DecidedAt.Truncate(time.Microsecond)
	}
	if p.PublishedAt != nil {
		e.PublishedAt = p.PublishedAt.Truncate(time.Microsecond)
	}
	if p.ResponsiblePersons != nil {
		e.ResponsiblePersons = slices.Clone(*p.ResponsiblePersons)
	}
	return e
}

// Entries administers list entries.
type Entries struct {
	store   EntriesStore
	catalog *policy.Catalog
	now     func() time.Time
	audit   *Audit // administrative acts are recorded here (audit_entries.go)
	changed func(subjects ...string)
}

// EntriesOption configures Entries.
type EntriesOption func(*Entries)

// WithChangeHook is called with the subjects (and responsible persons)
// whose entries changed, after the change is stored: caches invalidate on it.
func WithChangeHook(fn func(subjects ...string)) EntriesOption {
	return func(e *Entries) { e.changed = fn }
}

// WithEntriesClock sets the clock (tests).
func WithEntriesClock(now func() time.Time) EntriesOption { return func(e *Entries) { e.now = now } }

// NewEntries returns the entry service.
func NewEntries(store EntriesStore, cat *policy.Catalog, opts ...EntriesOption) *Entries {
	e := &Entries{store: store, catalog: cat, now: time.Now, changed: func(...string) {}}
	for _, o := range opts {
		o(e)
	}
	return e
}

// Prepare validates an input and builds the entry it describes, without
// storing it.
func (s *Entries) Prepare(in EntryInput) (policy.Entry, error) {
	subject, err := policy.ParseSubjectID(in.Subject)
	if err != nil {
		return policy.Entry{}, fmt.Errorf("subject_id: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return policy.Entry{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	e := policy.Entry{
		ID: "ent_" + strings.ReplaceAll(id.String(), "-", ""), Subject: subject, List: in.List,
		OriginatingDepartment: strings.TrimSpace(in.OriginatingDepartment), Reason: strings.TrimSpace(in.Reason),
		LegalBasis: strings.TrimSpace(in.LegalBasis), EvidenceRefs: in.EvidenceRefs,
		DecidedAt: in.DecidedAt.Truncate(time.Microsecond), PublishedAt: in.PublishedAt.Truncate(time.Microsecond),
		ResponsiblePersons: append([]policy.ResponsiblePerson(nil), in.ResponsiblePersons...),
		CreatedAt:          now, UpdatedAt: now, Version: 1,
		ParticularlySerious: in.ParticularlySerious,
	}
	if e, err = s.catalog.PrepareEntry(e); err != nil {
		return policy.Entry{}, err
	}
	if err := decidedBy(e.DecidedAt, now); err != nil {
		return policy.Entry{}, err
	}
	return e, nil
}

// Create validates and stores one entry.
func (s *Entries) Create(ctx context.Context, in EntryInput) (policy.Entry, error) {
	e, err := s.Prepare(in)
	if err != nil {
		return policy.Entry{}, err
	}
	// The same decision stored already (a create retried after its answer
	// was lost, or sent twice): a second listing, refused as imports
	// refuse it (storedDuplicateLines says why revoked ones count).
	found, err := s.store.StoredDuplicates(ctx, "", []policy.Entry{e}, 1)
	if err != nil {
		return policy.Entry{}, fmt.Errorf("store entry: %w", err)
	}
	if len(found) > 0 {
		return policy.Entry{}, fmt.Errorf("%w: %w: the same entry as stored entry %s (subject_id, list, originating_department and decided_at): it is listed already",
			policy.ErrInvalidEntry, ErrDuplicateEntry, found[0].StoredID)
	}
	// The catalogue's cross-list rules (lifecycle.go) may close entries;
	// the act names them. A refusal still fails the act it was for.
	x, xerr := s.crossList(ctx, []policy.Entry{e}, nil)
	if err := s.audit.do(ctx, ActEntryCreated, e.ID, x.describe(entryDetails(e)), func() error {
		if xerr != nil {
			return xerr
		}
		return s.insert(ctx, x)
	}); err != nil {
		return policy.Entry{}, fmt.Errorf("store entry: %w", err)
	}
	s.changed(affected(e)...)
	return e, nil
}

// LineError is a rejected line of an import.
type LineError struct {
	Line int
	Err  error
}

func (e LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// ImportError lists every rejected line of an import; nothing was stored.
type ImportError struct {
	Lines []LineError
}

func (e *ImportError) Error() string {
	return fmt.Sprintf("%v: %d bad lines, nothing imported", ErrImportRejected, len(e.Lines))
}

// Unwrap lets errors.Is find ErrImportRejected.
func (e *ImportError) Unwrap() error { return ErrImportRejected }

// Import validates every input and stores all of them in one transaction,
// or none when any line is bad. lines gives each input's line number in the
// source file, for error reports.
func (s *Entries) Import(ctx context.Context, inputs []EntryInput, lines []int) ([]policy.Entry, error) {
	if len(inputs) > MaxImport {
		return nil, fmt.Errorf("%w: %d entries, at most %d", ErrImportTooLarge, len(inputs), MaxImport)
	}
	entries := make([]policy.Entry, 0, len(inputs))
	var bad []LineError
	dups := newImportDuplicates()
	defer dups.close()
	for i, in := range inputs {
		line := i + 1
		if i < len(lines) {
			line = lines[i]
		}
		e, err := s.Prepare(in)
		if err != nil {
			bad = append(bad, LineError{Line: line, Err: err})
			continue
		}
		dups.add(e, line)
		entries = append(entries, e)
	}
	bad, err := withDuplicates(bad, dups)
	if err != nil {
		return nil, err
	}
	if len(bad) == 0 {
		if bad, err = s.storedDuplicateLines(ctx, "", entries, dups); err != nil {
			return nil, err
		}
	}
	if len(bad) > 0 {
		return nil, &ImportError{Lines: bad}
	}
	if len(entries) == 0 {
		return nil, &ImportError{Lines: []LineError{{Line: 0, Err: errors.New("no entries")}}}
	}
	x, xerr := s.crossList(ctx, entries, lines)
	if err := s.audit.do(ctx, ActEntriesImported, "entries", x.describe(importDetails(entries)), func() error {
		if xerr != nil {
			return xerr
		}
		return s.insert(ctx, x)
	}); err != nil {
		return nil, fmt.Errorf("store import: %w", err)
	}
	var subjects []string
	for i := range entries {
		subjects = append(subjects, affected(entries[i])...)
	}
	s.changed(subjects...)
	return entries, nil
}

// Get returns one entry.
func (s *Entries) Get(ctx context.Context, id string) (policy.Entry, error) {
	return s.store.GetEntry(ctx, id)
}

// List returns entries by filter.
func (s *Entries) List(ctx context.Context, f EntryFilter) ([]policy.Entry, error) {
	if f.Subject != "" {
		id, err := policy.ParseSubjectID(f.Subject)
		if err != nil {
			return nil, fmt.Errorf("subject_id: %w", err)
		}
		f.Subject = id.Value
	}
	if f.Limit <= 0 || f.Limit > MaxPage {
		f.Limit = MaxPage
	}
	return s.store.ListEntries(ctx, f)
}

// Patch changes an entry's editable fields. The list rule is re-applied
// (validity follows a changed publication date). A revoked entry cannot be
// changed, and a patch must name a field. Unless ifVersion is 0 the entry
// must still be at that version (the one the caller read, If-Match; a
// negative one matches none), else ErrVersionMismatch: two clerks editing
// one entry's lists of evidence or persons would otherwise each replace the
// other's.
func (s *Entries) Patch(ctx context.Context, id string, p EntryPatch, ifVersion int64) (policy.Entry, error) {
	if p == (EntryPatch{}) {
		// A patch that names no field would still bump the version and
		// record an act that changed nothing.
		return policy.Entry{}, fmt.Errorf("%w: nothing to change", policy.ErrInvalidEntry)
	}
	old, err := s.store.GetEntry(ctx, id)
	if err != nil {
		return policy.Entry{}, err
	}
	if ifVersion != 0 && old.Version != ifVersion {
		return policy.Entry{}, fmt.Errorf("entry %s is at version %d, not %d: %w", id, old.Version, ifVersion, ErrVersionMismatch)
	}
	if old.RevokedAt != nil {
		return policy.Entry{}, fmt.Errorf("entry %s: %w", id, policy.ErrEntryRevoked)
	}
	e := p.apply(old)
	e, err = s.catalog.PrepareEntry(e)
	if err != nil {
		return policy.Entry{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	if p.DecidedAt != nil {
		if err := decidedBy(e.DecidedAt, now); err != nil {
			return policy.Entry{}, err
		}
	}
	e.UpdatedAt = now
	e.Version = old.Version + 1
	if err := s.audit.do(ctx, ActEntryPatched, e.ID, patchDetails(e, p), func() error {
		return s.store.UpdateEntry(ctx, e)
	}); err != nil {
		return policy.Entry{}, fmt.Errorf("update entry: %w", err)
	}
	s.changed(append(affected(old), affected(e)...)...)
	return e, nil
}

// Revoke ends an entry now. The record stays; measures stop.
func (s *Entries) Revoke(ctx context.Context, id, reason string) (policy.Entry, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > policy.MaxTextLen {
		return policy.Entry{}, fmt.Errorf("%w: a revocation needs a reason of at most %d bytes", policy.ErrInvalidEntry, policy.MaxTextLen)
	}
	// The rule of every free text (policy.TextProblem): PostgreSQL cannot
	// store NUL, SQLite can, and the other control characters are
	// invisible to whoever reads the reason back.
	if p := policy.TextProblem(reason); p != "" {
		return policy.Entry{}, fmt.Errorf("%w: reason %s", policy.ErrInvalidEntry, p)
	}
	e, err := s.store.GetEntry(ctx, id)
	if err != nil {
		return policy.Entry{}, err
	}
	if e.RevokedAt != nil {
		return policy.Entry{}, fmt.Errorf("entry %s: %w", id, policy.ErrEntryRevoked)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	old := e
	// An objection, repair or exit application still open is closed by
	// the revocation, in the same version of the entry and named in the
	// same act.
	e = policy.Revoke(e, reason, now)
	e.UpdatedAt = now
	e.Version++
	var closed closedProceedings
	closed.add(old, e)
	details := closed.describe(revokeDetails(e))
	if err := s.audit.do(ctx, ActEntryRevoked, e.ID, details, func() error {
		// ApplyEntryChanges, not UpdateEntry: it also rewrites the
		// entry's proceedings index, which lists open proceedings.
		return s.store.ApplyEntryChanges(ctx, EntryChanges{Update: []policy.Entry{e}})
	}); err != nil {
		return policy.Entry{}, fmt.Errorf("revoke entry: %w", err)
	}
	s.changed(affected(e)...)
	return e, nil
}

// closedProceedings are the proceedings revocations closed: the ids of
// objections, repairs and exit applications open before and closed by the
// revocation after (policy.Revoke), for the act's details.
type closedProceedings struct {
	objections, repairs, exits []string
}

// add adds those a revocation closed in e that were open in old. One
// closed already (a closure moved earlier) is named once, by the act that
// closed it.
func (c *closedProceedings) add(old, e policy.Entry) {
	for _, o := range e.Objections {
		if o.Decision != policy.DecisionClosedByRevocation {
			continue
		}
		if i := slices.IndexFunc(old.Objections, func(p policy.Objection) bool { return p.ID == o.ID }); i < 0 || old.Objections[i].DecidedAt == nil {
			c.objections = append(c.objections, o.ID)
		}
	}
	for _, r := range e.Repairs {
		if r.State != policy.StateClosedByRevocation {
			continue
		}
		if i := slices.IndexFunc(old.Repairs, func(p policy.Repair) bool { return p.ID == r.ID }); i < 0 || openState(old.Repairs[i].State) {
			c.repairs = append(c.repairs, r.ID)
		}
	}
	for _, x := range e.Exits {
		if x.State != policy.StateClosedByRevocation {
			continue
		}
		if i := slices.IndexFunc(old.Exits, func(p policy.ExitApplication) bool { return p.ID == x.ID }); i < 0 || openState(old.Exits[i].State) {
			c.exits = append(c.exits, x.ID)
		}
	}
}

// describe names the closed proceedings in an act's details
// (closed_objections, closed_repairs, closed_exits), each only when there
// are some.
func (c closedProceedings) describe(d map[string]any) map[string]any {
	for key, ids := range map[string][]string{"closed_objections": c.objections, "closed_repairs": c.repairs, "closed_exits": c.exits} {
		if len(ids) > 0 {
			d[key] = ids
		}
	}
	return d
}

// openState reports whether a repair or exit application in state awaits
// a decision.
func openState(s policy.ApplicationState) bool {
	return s == policy.StateApplied || s == policy.StateReviewed
}

// affected lists the subjects whose answers an entry change can alter.
func affected(e policy.Entry) []string {
	out := []string{e.Subject.Value}
	for _, p := range e.ResponsiblePersons {
		out = append(out, p.ID)
	}
	return out
}
