package service

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/internal/telemetry/spans"
	"github.com/credgate/credgate/policy"
)

// Errors of the check use case.
var (
	// ErrActionNotAllowed: the partner is not entitled to check this action.
	ErrActionNotAllowed = errors.New("action not allowed for this partner")
	// ErrBatchTooLarge: more subjects than MaxBatch in one batch.
	ErrBatchTooLarge = errors.New("batch too large")
	// ErrEmptyBatch: a batch with no subjects.
	ErrEmptyBatch = errors.New("batch has no subjects")
	// ErrInvalidReference: the caller reference is too long.
	ErrInvalidReference = errors.New("invalid reference")
	// ErrForbidden: the record exists but belongs to another partner.
	ErrForbidden = errors.New("forbidden")
)

// Limits of the check API.
const (
	MaxBatch        = 1000
	MaxReferenceLen = 200
)

// EvidenceLog durably records a batch of records and returns them with
// their indexes, in order.
type EvidenceLog interface {
	Append(ctx context.Context, recs ...evidence.Record) ([]evidence.Record, error)
}

// CheckRequest is one subject checked for one action.
type CheckRequest struct {
	Subject   string
	Action    string
	Reference string
	// AsOf asks what credgate knew and would have answered at that past
	// time (admins and auditors only; subjects.go).
	AsOf *time.Time
	// ValidAt asks about the subject's standing at that past time, from
	// the entries as known now, or at AsOf when both are given
	// (context.go).
	ValidAt *time.Time
	// Context narrows the caller's region and states the industry,
	// subject type and employer type the measures' scopes are matched
	// against (context.go).
	Context policy.CheckContext
	// IdempotencyKey, when set, makes a retry of this check replay the
	// one recorded first rather than record another (idempotency.go).
	IdempotencyKey string
}

// Caller is who asks.
type Caller struct {
	ClientID string
	Role     Role
	Actions  []string
	// SubjectKinds and Visibility are the partner's scope (scope.go).
	SubjectKinds []policy.SubjectKind
	Visibility   Visibility
	// Region is the partner's registered jurisdiction (GB/T 2260); ""
	// means national measures only (context.go).
	Region string
}

func (c Caller) mayCheck(action string) bool {
	if c.Role == RoleAdmin {
		return true
	}
	for _, a := range c.Actions {
		if a == action {
			return true
		}
	}
	return false
}

// SubjectView is the normalised subject in an answer.
type SubjectView struct {
	ID   string             `json:"id"`
	Kind policy.SubjectKind `json:"kind"`
}

// ViaView says through which organisation and role an entry reaches a person.
type ViaView struct {
	Organization string      `json:"organization"`
	Role         policy.Role `json:"role"`
}

// MeasureView is one measure in an answer, with what the caller must cite.
// Measures out of the caller's scope are listed too, not_applicable with
// the reason, so that an auditor sees why they did not apply.
type MeasureView struct {
	ID         string               `json:"id"`
	List       string               `json:"list"`
	Effect     policy.Effect        `json:"effect"`
	Mandatory  bool                 `json:"mandatory"`
	Status     policy.MeasureStatus `json:"status"`
	Text       string               `json:"text"`
	LegalBasis string               `json:"legal_basis"`
	Authority  string               `json:"authority"`
	Source     string               `json:"source"`
	// EntryID is the entry that triggered the measure; absent when it
	// applies by eligibility (Basis).
	EntryID string   `json:"entry_id,omitempty"`
	Via     *ViaView `json:"via,omitempty"`
	// Until ends a measure that has a term of its own (e.g. 3 years from
	// the listing), independent of the entry's validity.
	Until *time.Time `json:"until,omitempty"`
	// Basis is "eligibility" for a red-list measure granted because the
	// subject meets its condition (连续三年无不良信用记录) rather than by
	// a red entry.
	Basis policy.Basis `json:"basis,omitempty"`
	// Reason says why the measure is not applied (out of scope, withheld,
	// outranked, suspended) or what made the subject eligible.
	Reason string `json:"reason,omitempty"`
	// Scope is the measure's scope when it has one (region, industry …).
	Scope *policy.Scope `json:"scope,omitempty"`
	// Placeholder says what the source text leaves blank in the measure
	// (an authority written "***区").
	Placeholder string `json:"placeholder,omitempty"`
}

func measureView(m policy.AppliedMeasure) MeasureView {
	v := MeasureView{
		ID: m.Measure.ID, List: m.Measure.List, Effect: m.Measure.Effect, Mandatory: m.Measure.Mandatory,
		Status: m.Status, Text: m.Measure.Text, LegalBasis: m.Measure.LegalBasis,
		Authority: m.Measure.Authority, Source: m.Measure.Source, EntryID: m.EntryID, Via: viaView(m.Via),
		Until: m.Until, Basis: m.Basis, Reason: m.Reason, Placeholder: m.Measure.Placeholder,
	}
	if !m.Measure.Scope.IsZero() {
		v.Scope = &m.Measure.Scope
	}
	return v
}

// EntryView is one entry affecting the subject in an answer.
type EntryView struct {
	ID                    string             `json:"id"`
	List                  string             `json:"list"`
	ListName              string             `json:"list_name"`
	ListKind              policy.ListKind    `json:"list_kind"`
	Status                policy.EntryStatus `json:"status"`
	OriginatingDepartment string             `json:"originating_department,omitempty"` // withheld below full visibility
	Reason                string             `json:"reason,omitempty"`                 // withheld below full visibility
	LegalBasis            string             `json:"legal_basis"`
	DecidedAt             time.Time          `json:"decided_at"`
	PublishedAt           time.Time          `json:"published_at"`
	ValidUntil            *time.Time         `json:"valid_until,omitempty"`
	Via                   *ViaView           `json:"via,omitempty"`
}

// ReceiptView tells the caller where the evidence of its check lies.
type ReceiptView struct {
	LogIndex   uint64 `json:"log_index"`
	RecordHash string `json:"record_hash"` // hex SHA-256 of salt || record
	// LeafHash is the hex RFC 6962 leaf hash the Merkle tree holds at
	// LogIndex (evidence.LeafHash): with it a caller can later check the
	// record's inclusion without its body. GET /v1/evidence/receipts/{id}
	// gives the full proof.
	LeafHash string `json:"leaf_hash"`
	// State is "spooled" when the log could not commit the record in time
	// and this replica spooled it (spool.go): Promise then stands in for
	// LogIndex and LeafHash. Absent for a record in the log.
	State   string            `json:"state,omitempty"`
	Promise *evidence.Promise `json:"promise,omitempty"`
}

// CheckAnswer is what credgate answers to a check. Its JSON (without the
// receipt) is the evidence record's body.
type CheckAnswer struct {
	CheckID   string      `json:"check_id"`
	Partner   string      `json:"partner"`
	Subject   SubjectView `json:"subject"`
	Action    string      `json:"action"`
	Reference string      `json:"reference,omitempty"`
	// IdempotencyKey is the Idempotency-Key the check was sent with, so
	// that the record names it and a store maps it (idempotency.go).
	IdempotencyKey  string         `json:"idempotency_key,omitempty"`
	Outcome         policy.Outcome `json:"outcome"`
	Measures        []MeasureView  `json:"measures"`
	Entries         []EntryView    `json:"entries"`
	CatalogRevision string         `json:"catalog_revision"`
	DataAsOf        time.Time      `json:"data_as_of"`
	CheckedAt       time.Time      `json:"checked_at"`
	// AsOf is the past time the answer is about, for checks re-run as of
	// a past time (subjects.go); absent for checks of now.
	AsOf *time.Time `json:"as_of,omitempty"`
	// ValidAt is the time whose standing was decided, when the check
	// asked about a past time (context.go).
	ValidAt *time.Time `json:"valid_at,omitempty"`
	// Context is the effective context the measures' scopes were matched
	// against: the region stated or registered, and what the check stated.
	Context ContextView `json:"context"`
	// Unverifiable says why, when the outcome is unverifiable.
	Unverifiable *UnverifiableView `json:"unverifiable,omitempty"`
	Receipt      *ReceiptView      `json:"receipt,omitempty"`

	// body is the answer's JSON as recorded in the evidence log (without
	// the receipt), kept so that the answer is encoded once.
	body []byte
	// replayed: the answer is that of a check recorded before under the
	// same idempotency key, not a new check.
	replayed bool
}

// Replayed reports whether the answer replays a check recorded before
// under the same idempotency key (nothing new was recorded).
func (a *CheckAnswer) Replayed() bool { return a.replayed }

// Checker answers checks and records each one as evidence before it is
// returned.
type Checker struct {
	catalog *policy.Catalog
	entries EntryLookup
	log     EvidenceLog
	records EvidenceReader
	now     func() time.Time
	fanout  int

	// Freshness (freshness.go): the bound on entry data age, and the
	// upstream sources with the (list, action) pairs that carry measures.
	maxStaleness time.Duration
	sources      SourceMonitor
	actionLists  map[listAction]bool

	// history answers what credgate knew at a past time (subjects.go).
	history History
	// violations are read for eligibility measures (context.go).
	violations ViolationReader

	// tracer records the check's stages; nil: off (tracing.go).
	tracer trace.Tracer

	// leaves holds a record read back to the tree (records.go); receipts
	// builds the receipt of an erased record.
	leaves   TreeLeafReader
	receipts ReceiptBuilder

	// idem maps idempotency keys to checks (the store, when it does);
	// keyed serialises the checks of one partner's key on this replica.
	idem  IdempotencyStore
	keyed keyedChecks
}

// EvidenceReader reads a past record.
type EvidenceReader interface {
	Record(ctx context.Context, id string) (evidence.Record, error)
}

// CheckRecords is what the checker reads besides entries: past checks,
// held to the tree's leaf at their position, and, for eligibility, the
// subject's violation records. Every store is one; declared here so that
// the checker needs no type assertion to find them.
type CheckRecords interface {
	EvidenceReader
	TreeLeafReader
	ViolationReader
}

var _ CheckRecords = Store(nil)

// CheckerOption configures a Checker.
type CheckerOption func(*Checker)

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) CheckerOption { return func(c *Checker) { c.now = now } }

// WithBatchFanout sets how many subjects of a batch are looked up at once.
func WithBatchFanout(n int) CheckerOption {
	return func(c *Checker) {
		if n > 0 {
			c.fanout = n
		}
	}
}

// NewChecker returns a Checker.
func NewChecker(cat *policy.Catalog, entries EntryLookup, log EvidenceLog, records CheckRecords, opts ...CheckerOption) *Checker {
	c := &Checker{catalog: cat, entries: entries, log: log, records: records, now: time.Now, fanout: 8}
	for _, o := range opts {
		o(c)
	}
	c.leaves = records
	if c.idem == nil {
		c.idem, _ = records.(IdempotencyStore)
	}
	if c.violations == nil {
		c.violations = records
		if c.history != nil {
			c.violations = c.history
		}
	}
	return c
}

// Catalog returns the catalogue the checker applies.
func (c *Checker) Catalog() *policy.Catalog { return c.catalog }

func (c *Checker) validate(caller Caller, action, reference string) error {
	if _, ok := c.catalog.Action(action); !ok {
		return fmt.Errorf("%w %q", policy.ErrUnknownAction, action)
	}
	if !caller.mayCheck(action) {
		return fmt.Errorf("%w: %q", ErrActionNotAllowed, action)
	}
	if len(reference) > MaxReferenceLen {
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidReference, MaxReferenceLen)
	}
	return nil
}

// Check answers one check and returns only once its evidence is durable.
// A check with an idempotency key sent again replays the one recorded
// first (idempotency.go).
func (c *Checker) Check(ctx context.Context, caller Caller, req CheckRequest) (ans CheckAnswer, err error) {
	ctx, span := c.span(ctx, spans.Check)
	defer func() { endSpan(span, err) }()
	if span.IsRecording() {
		span.SetAttributes(spans.Action.String(req.Action), spans.PastTime.Bool(req.AsOf != nil || req.ValidAt != nil))
	}
	caller, subject, p, err := c.prepare(caller, req)
	if err != nil {
		return CheckAnswer{}, err
	}
	if span.IsRecording() {
		span.SetAttributes(spans.SubjectKind.String(string(subject.Kind)))
	}
	if req.IdempotencyKey != "" {
		return c.checkKeyed(ctx, caller, subject, p, req.IdempotencyKey)
	}
	ans, rec, err := c.decide(ctx, caller, subject, p)
	if err != nil {
		return CheckAnswer{}, err
	}
	recs, err := c.appendEvidence(ctx, rec)
	if err != nil {
		return CheckAnswer{}, fmt.Errorf("record check: %w", err)
	}
	if span.IsRecording() {
		span.SetAttributes(spans.Outcome.String(string(ans.Outcome)))
	}
	ans.Receipt = c.receipt(ctx, recs[0])
	return ans, nil
}

// prepare validates a check's request: the caller it is answered for, its
// subject and its parameters.
func (c *Checker) prepare(caller Caller, req CheckRequest) (Caller, policy.SubjectID, checkParams, error) {
	if req.AsOf != nil {
		var err error
		if caller, err = c.asOfCaller(caller, req); err != nil {
			return caller, policy.SubjectID{}, checkParams{}, err
		}
	}
	if err := c.validate(caller, req.Action, req.Reference); err != nil {
		return caller, policy.SubjectID{}, checkParams{}, err
	}
	p, err := c.params(caller, req.Action, req.Reference, req.AsOf, req.ValidAt, req.Context)
	if err != nil {
		return caller, policy.SubjectID{}, checkParams{}, err
	}
	subject, err := policy.ParseSubjectID(req.Subject)
	if err != nil {
		return caller, policy.SubjectID{}, checkParams{}, err
	}
	if !caller.mayCheckKind(subject.Kind) {
		return caller, policy.SubjectID{}, checkParams{}, fmt.Errorf("%w: %s", ErrSubjectKindNotAllowed, subject.Kind)
	}
	return caller, subject, p, nil
}

// appendEvidence appends recs to the evidence log in a span of its own;
// the appender adds the size of the group commit they went in.
func (c *Checker) appendEvidence(ctx context.Context, recs ...evidence.Record) (_ []evidence.Record, err error) {
	ctx, span := c.span(ctx, spans.EvidenceAppend)
	defer func() { endSpan(span, err) }()
	if span.IsRecording() {
		span.SetAttributes(spans.Records.Int(len(recs)))
	}
	return c.log.Append(ctx, recs...)
}

// receipt is the receipt of a committed record, in a span of its own.
func (c *Checker) receipt(ctx context.Context, r evidence.Record) *ReceiptView {
	_, span := c.span(ctx, spans.Receipt)
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(spans.LogIndex.Int64(int64(r.Index)))
	}
	return receipt(r)
}

// BatchItem is one subject's result in a batch: an answer or an error.
type BatchItem struct {
	Answer *CheckAnswer
	Err    error
}

// BatchRequest is up to MaxBatch subjects checked for one action, in one
// context, at one valid time.
type BatchRequest struct {
	Subjects  []string
	Action    string
	Reference string
	ValidAt   *time.Time
	Context   policy.CheckContext
	// IdempotencyKey, when set, makes a retry of this batch replay the
	// one recorded first rather than record another (idempotency_batch.go).
	IdempotencyKey string
}

// CheckBatch checks up to MaxBatch subjects for one action. Subjects that
// fail validation get their own error and do not stop the others; every
// answered subject is durably recorded, all in one group commit, before the
// batch returns. A batch with an idempotency key sent again replays the
// one recorded first (idempotency_batch.go).
func (c *Checker) CheckBatch(ctx context.Context, caller Caller, req BatchRequest) (_ []BatchItem, err error) {
	ctx, span := c.span(ctx, spans.CheckBatch)
	defer func() { endSpan(span, err) }()
	if span.IsRecording() {
		span.SetAttributes(spans.Action.String(req.Action), spans.Subjects.Int(len(req.Subjects)), spans.PastTime.Bool(req.ValidAt != nil))
	}
	subjects := req.Subjects
	if len(subjects) == 0 {
		return nil, ErrEmptyBatch
	}
	if len(subjects) > MaxBatch {
		return nil, fmt.Errorf("%w: %d subjects, at most %d", ErrBatchTooLarge, len(subjects), MaxBatch)
	}
	if err := c.validate(caller, req.Action, req.Reference); err != nil {
		return nil, err
	}
	p, err := c.params(caller, req.Action, req.Reference, nil, req.ValidAt, req.Context)
	if err != nil {
		return nil, err
	}
	if req.IdempotencyKey != "" {
		return c.checkBatchKeyed(ctx, caller, subjects, p, req.IdempotencyKey)
	}
	return c.checkBatch(ctx, caller, subjects, p)
}

// checkBatch decides and records a batch's subjects; p.idempotencyKey is
// the batch's key, "" for none.
func (c *Checker) checkBatch(ctx context.Context, caller Caller, subjects []string, p checkParams) ([]BatchItem, error) {
	items := make([]BatchItem, len(subjects))
	recs := make([]evidence.Record, len(subjects))
	sem := make(chan struct{}, c.fanout)
	errs := make(chan error, len(subjects))
	for i, raw := range subjects {
		subject, err := policy.ParseSubjectID(raw)
		if err != nil {
			items[i].Err = err
			continue
		}
		if !caller.mayCheckKind(subject.Kind) {
			items[i].Err = fmt.Errorf("%w: %s", ErrSubjectKindNotAllowed, subject.Kind)
			continue
		}
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			ans, rec, err := c.decide(ctx, caller, subject, p)
			if err != nil {
				errs <- err
				return
			}
			if p.idempotencyKey != "" {
				// The body names the key; the store maps the check under
				// the batch's form of it (idempotency_batch.go).
				rec.Check.IdempotencyKey = BatchIdempotencyKey(p.idempotencyKey)
			}
			items[i].Answer = &ans
			recs[i] = rec
		}()
	}
	for range c.fanout {
		sem <- struct{}{}
	}
	close(errs)
	if err := <-errs; err != nil {
		// A lookup failure is not the subject's fault: fail the batch
		// rather than answer part of it.
		return nil, err
	}
	var pending []evidence.Record
	var at []int
	for i := range items {
		if items[i].Answer != nil {
			pending = append(pending, recs[i])
			at = append(at, i)
		}
	}
	if len(pending) > 0 {
		done, err := c.appendEvidence(ctx, pending...)
		if err != nil {
			if p.idempotencyKey != "" && ctx.Err() == nil &&
				(errors.Is(err, evidence.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)) {
				// Not spooled (spool.go): the key could not be honoured.
				err = fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
			}
			return nil, fmt.Errorf("record checks: %w", err)
		}
		// One receipt span for the batch, not one per subject.
		_, rspan := c.span(ctx, spans.Receipt)
		for j, i := range at {
			items[i].Answer.Receipt = receipt(done[j])
		}
		rspan.End()
	}
	return items, nil
}

func receipt(r evidence.Record) *ReceiptView {
	if r.Promise != nil {
		return spooledReceipt(r)
	}
	leaf := evidence.LeafHash(r)
	// Both digests in one string, one allocation where EncodeToString
	// made two each.
	var buf [4 * evidence.HashSize]byte
	hex.Encode(buf[:2*evidence.HashSize], r.Hash[:])
	hex.Encode(buf[2*evidence.HashSize:], leaf[:])
	both := string(buf[:])
	return &ReceiptView{LogIndex: r.Index, RecordHash: both[:2*evidence.HashSize], LeafHash: both[2*evidence.HashSize:]}
}

// checkParams is what a check asks besides the subject, validated.
type checkParams struct {
	action, reference string
	// past is AsOf (what credgate knew then), validAt the time whose
	// standing is decided; either may be nil.
	past, validAt *time.Time
	context       policy.CheckContext
	// idempotencyKey is the check's key, "" for none (idempotency.go).
	idempotencyKey string
}

// params validates the valid time and the context of a check.
func (c *Checker) params(caller Caller, action, reference string, past, validAt *time.Time, stated policy.CheckContext) (checkParams, error) {
	if err := c.validValidAt(validAt); err != nil {
		return checkParams{}, err
	}
	ctx, err := c.effectiveContext(caller, stated)
	if err != nil {
		return checkParams{}, err
	}
	p := checkParams{action: action, reference: reference, past: past, context: ctx}
	if validAt != nil {
		v := validAt.UTC()
		p.validAt = &v
	}
	return p, nil
}

func (c *Checker) decide(ctx context.Context, caller Caller, subject policy.SubjectID, p checkParams) (CheckAnswer, evidence.Record, error) {
	found, err := c.tracedLookup(ctx, subject.Value, p.past)
	if err != nil {
		return CheckAnswer{}, evidence.Record{}, fmt.Errorf("look up entries: %w", err)
	}
	return c.decideFound(ctx, caller, subject, p, found)
}

// decideFound is decide on entries already looked up (a screening job
// reads a batch of subjects' at once).
func (c *Checker) decideFound(ctx context.Context, caller Caller, subject policy.SubjectID, p checkParams, found Lookup) (CheckAnswer, evidence.Record, error) {
	action, reference, past := p.action, p.reference, p.past
	now := c.now().UTC()
	at := now
	var knownAt time.Time // zero: every record known now
	if past != nil {
		at, knownAt = *past, *past // the entries as known then, decided then
	}
	if p.validAt != nil {
		at = *p.validAt // … or decided at the valid time asked about
	}
	q := policy.Query{Subject: subject, Action: action, At: at, Context: p.context}
	q.Violations, q.ViolationsUnknown = c.violationsFor(ctx, action, subject.Value, knownAt)
	_, span := c.span(ctx, spans.Decide)
	defer span.End()
	d, err := policy.Decide(c.catalog, q, found.Entries)
	if err != nil {
		return CheckAnswer{}, evidence.Record{}, err
	}
	// Data older than its bound never yields an answer, least of all
	// "clear": the measures it shows are listed, the outcome is not given.
	asOf, unverifiable := c.freshness(action, found.AsOf, now)
	if past != nil {
		// The history is complete as of then; freshness bounds are about now.
		asOf, unverifiable = *past, nil
	}
	if unverifiable != nil {
		d.Outcome = policy.OutcomeUnverifiable
	}
	traceDecision(span, subject.Kind, action, d)
	id, err := uuid.NewV7()
	if err != nil {
		return CheckAnswer{}, evidence.Record{}, fmt.Errorf("check id: %w", err)
	}
	ans := CheckAnswer{
		CheckID:         id.String(),
		Partner:         caller.ClientID,
		Subject:         SubjectView{ID: subject.Value, Kind: subject.Kind},
		Action:          action,
		Reference:       reference,
		IdempotencyKey:  p.idempotencyKey,
		Outcome:         d.Outcome,
		Measures:        make([]MeasureView, 0, len(d.Measures)),
		Entries:         make([]EntryView, 0, len(d.Findings)),
		CatalogRevision: c.catalog.Revision(),
		DataAsOf:        asOf,
		CheckedAt:       now,
		AsOf:            past,
		ValidAt:         p.validAt,
		Context:         contextView(p.context),
		Unverifiable:    unverifiable,
	}
	for _, m := range d.Measures {
		ans.Measures = append(ans.Measures, measureView(m))
	}
	all := caller.Role == RoleAdmin || caller.Role == RoleAuditor // they see every entry
	for _, f := range d.Findings {
		if !f.Disclosed && !all {
			// Kept by the department that recorded it (policy
			// Finding.Disclosed): a partner's answer, and so its evidence
			// record, leaves it out; the decision is the same.
			continue
		}
		l, _ := c.catalog.List(f.Entry.List)
		ans.Entries = append(ans.Entries, EntryView{
			ID: f.Entry.ID, List: f.Entry.List, ListName: l.Name, ListKind: l.Kind, Status: f.Status,
			OriginatingDepartment: f.Entry.OriginatingDepartment, Reason: f.Entry.Reason,
			LegalBasis: f.Entry.LegalBasis, DecidedAt: f.Entry.DecidedAt, PublishedAt: f.Entry.PublishedAt,
			ValidUntil: f.Entry.ValidUntil, Via: viaView(f.Via),
		})
	}
	redactForCaller(&ans, caller)
	body, err := ans.encode()
	if err != nil {
		return CheckAnswer{}, evidence.Record{}, fmt.Errorf("encode check: %w", err)
	}
	rec := evidence.Record{ID: ans.CheckID, Kind: evidence.KindCheck, Partner: caller.ClientID, At: now, Body: body,
		Check: ans.Facts()}
	ans.body = body
	return ans, rec, nil
}

// Facts are the members of the answer's body that stores index
// (evidence.CheckFacts), so that they need not parse the body it has just
// been encoded into; nil for a re-run as of a past time, which no store
// indexes.
func (a *CheckAnswer) Facts() *evidence.CheckFacts {
	if a.AsOf != nil {
		return nil
	}
	f := &evidence.CheckFacts{Subject: a.Subject.ID, Action: a.Action, Outcome: string(a.Outcome), Region: a.Context.Region,
		IdempotencyKey: a.IdempotencyKey}
	for i := range a.Measures {
		if m := &a.Measures[i]; m.Status == policy.MeasureApplied {
			f.Lists = append(f.Lists, m.List)
		}
	}
	return f
}

// encode is the answer's JSON as json.Marshal writes it, written without
// reflection when it can be (answer_json.go). The buffer is sized from
// the answer's parts (a clear answer is about 500 bytes, each measure or
// entry up to about a kilobyte), so that it is rarely grown and copied.
func (a *CheckAnswer) encode() ([]byte, error) {
	if b, ok := a.appendJSON(make([]byte, 0, 640+1024*len(a.Measures)+768*len(a.Entries))); ok {
		return b, nil
	}
	return json.Marshal(a)
}

// JSON is the answer as sent: the evidence record's body, byte for byte,
// with the receipt added. Reusing the recorded bytes saves encoding the
// answer twice on the hot path and makes the answer exactly what was
// recorded.
func (a *CheckAnswer) JSON() ([]byte, error) {
	return a.AppendJSON(nil)
}

// AppendJSON appends what JSON returns to out, so that a caller may write
// the answer from a buffer it reuses.
func (a *CheckAnswer) AppendJSON(out []byte) ([]byte, error) {
	if a.body == nil || a.Receipt == nil || len(a.body) < 2 || a.body[len(a.body)-1] != '}' {
		b, err := a.encode()
		if out == nil || err != nil {
			return b, err
		}
		return append(out, b...), nil
	}
	out = slices.Grow(out, len(a.body)+len(`,"receipt":{"log_index":,"record_hash":"","leaf_hash":""}`)+20+4*evidence.HashSize)
	out = append(out, a.body[:len(a.body)-1]...)
	out = append(out, `,"receipt":`...)
	out, err := a.Receipt.appendJSON(out)
	if err != nil {
		return nil, err
	}
	return append(out, '}'), nil
}

// appendJSON appends the receipt's JSON, byte for byte what encoding/json
// writes; a receipt of a record in the log (the check path's) is written
// without reflection.
func (r *ReceiptView) appendJSON(out []byte) ([]byte, error) {
	if r.State != "" || r.Promise != nil || !plainJSON(r.RecordHash) || !plainJSON(r.LeafHash) {
		b, err := json.Marshal(r)
		return append(out, b...), err
	}
	out = append(out, `{"log_index":`...)
	out = strconv.AppendUint(out, r.LogIndex, 10)
	out = append(out, `,"record_hash":"`...)
	out = append(out, r.RecordHash...)
	out = append(out, `","leaf_hash":"`...)
	out = append(out, r.LeafHash...)
	return append(out, `"}`...), nil
}

// plainJSON reports whether s is written as is in a JSON string (letters
// and digits: the hex digests of a receipt).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

func viaView(v *policy.Via) *ViaView {
	if v == nil {
		return nil
	}
	return &ViaView{Organization: v.Organization, Role: v.Role}
}

// GetCheck returns a past check to the partner that made it. Admins and
// auditors may read any check; their read of another's check is recorded
// first (check_read, reads.go), and a check whose read cannot be recorded
// is not returned (ErrAuditUnavailable).
func (c *Checker) GetCheck(ctx context.Context, caller Caller, id string) (CheckAnswer, error) {
	ans, rec, err := c.pastCheck(ctx, caller, id)
	if err != nil {
		return CheckAnswer{}, err
	}
	if staffRead(caller, rec.Partner) {
		if err := recordRead(ctx, c.readAudit(), &caller, ActCheckRead, rec.ID, checkReadDetails(rec)); err != nil {
			return CheckAnswer{}, err
		}
	}
	return ans, nil
}

// pastCheck reads, verifies and decodes a past check visible to caller.
func (c *Checker) pastCheck(ctx context.Context, caller Caller, id string) (CheckAnswer, evidence.Record, error) {
	rec, err := c.records.Record(ctx, id)
	if err != nil {
		if errors.Is(err, evidence.ErrNotFound) {
			return CheckAnswer{}, evidence.Record{}, fmt.Errorf("check %q: %w", id, ErrNotFound)
		}
		return CheckAnswer{}, evidence.Record{}, err
	}
	if rec.Kind != evidence.KindCheck {
		return CheckAnswer{}, evidence.Record{}, fmt.Errorf("check %q: %w", id, ErrNotFound)
	}
	if caller.Role == RolePartner && rec.Partner != caller.ClientID {
		// Not ErrForbidden: telling a partner that another's check exists
		// would leak it.
		return CheckAnswer{}, evidence.Record{}, fmt.Errorf("check %q: %w", id, ErrNotFound)
	}
	if err := c.verifyRecord(ctx, rec); err != nil {
		return CheckAnswer{}, evidence.Record{}, err
	}
	var ans CheckAnswer
	if err := json.Unmarshal(rec.Body, &ans); err != nil {
		return CheckAnswer{}, evidence.Record{}, fmt.Errorf("decode stored check %q: %w", id, err)
	}
	ans.Receipt = receipt(rec)
	return ans, rec, nil
}
