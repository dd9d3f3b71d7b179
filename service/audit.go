package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/credgate/credgate/evidence"
)

// ErrAuditUnavailable: an administrative act could not be recorded in the
// evidence log, so it was not performed.
var ErrAuditUnavailable = errors.New("the administrative act could not be recorded; nothing was changed")

// Auditor durably appends records to the evidence log; evidence.Appender,
// the same one checks go through, is the implementation.
type Auditor interface {
	Append(ctx context.Context, recs ...evidence.Record) ([]evidence.Record, error)
}

// Act names an administrative act.
type Act string

// Administrative acts.
const (
	ActPartnerCreated    Act = "partner_created"
	ActPartnerUpdated    Act = "partner_updated"
	ActCredentialRotated Act = "partner_credential_rotated"
	ActPartnerRevoked    Act = "partner_revoked"
	ActEntryCreated      Act = "entry_created"
	ActEntryPatched      Act = "entry_patched"
	ActEntryRevoked      Act = "entry_revoked"
	ActEntriesImported   Act = "entries_imported"
	// ActCatalogLoaded is the name earlier versions gave the start record
	// that ActCatalogInUse now is; logs may still hold it.
	ActCatalogLoaded Act = "catalog_loaded"
	// ActCatalogInUse: a server started with this catalogue revision
	// (origin, calendar years, holidays file); recorded at every start.
	ActCatalogInUse Act = "catalog_in_use"
	ActFailed       Act = "act_failed"
)

// Reads of subjects' data by administrators and auditors (reads.go): each
// answer that shows staff a subject's data is recorded first, one act per
// request, naming the records shown and the route asked through.
const (
	// ActCheckRead: a past check's answer (GET /v1/checks/{id}, the
	// console's evidence page); target the check id.
	ActCheckRead Act = "check_read"
	// ActReceiptRead: a record's receipt, which carries its body (GET
	// /v1/evidence/receipts/{id}, the console's receipt); target the
	// record id.
	ActReceiptRead Act = "receipt_read"
	// ActEntryRead: one entry (GET /v1/admin/entries/{id}, the console's
	// entry page); target the entry id.
	ActEntryRead Act = "entry_read"
	// ActEntriesListed: a page of entries (GET /v1/admin/entries, the
	// console's entries list), with its filter and the entry ids shown.
	ActEntriesListed Act = "entries_listed"
	// ActProceedingsListed: a page of open objections, repairs or exits
	// (GET /v1/admin/objections, /repairs, /exits; the console's
	// proceedings page), with the ids shown; target the kind.
	ActProceedingsListed Act = "proceedings_listed"
	// ActViolationsRead: a subject's violation records and points (GET
	// /v1/admin/violations?subject_id=), naming the subject looked up.
	ActViolationsRead Act = "violations_read"
)

// The actor of credgate's own acts: the bootstrap administrator, the
// catalogue loaded at start, and acts reached without an authenticated
// caller (upstream feeds).
const (
	SystemActorID      = "credgate"
	RoleSystem    Role = "system"
)

// Actor is who performs an administrative act.
type Actor struct {
	ClientID string
	Role     Role
}

type actorKey struct{}

// WithActor returns ctx carrying the actor of the acts done under it. The
// gateway sets it from the access token; the command line from the local
// user.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor in ctx, or credgate itself.
func ActorFrom(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok && a.ClientID != "" {
		return a
	}
	return Actor{ClientID: SystemActorID, Role: RoleSystem}
}

// AuditBody is the canonical JSON body of an administrative act's evidence
// record. Details never hold secrets, hashes or responsible persons'
// identity numbers.
type AuditBody struct {
	Act     Act            `json:"act"`
	Actor   string         `json:"actor"`
	Target  string         `json:"target"`
	At      time.Time      `json:"at"`
	Details map[string]any `json:"details"`
}

// Audit records administrative acts in the evidence log.
//
// An act is recorded before it is done (write-ahead): if the record cannot
// be made durable the act is refused, so the log never lacks an act that
// was performed. If the act then fails (a conflict, a database error), a
// second record, act_failed, names the first; the log may therefore hold
// an attempt, never a silent change.
type Audit struct {
	log Auditor
	now func() time.Time
}

// AuditOption configures Audit.
type AuditOption func(*Audit)

// WithAuditClock sets the clock (tests).
func WithAuditClock(now func() time.Time) AuditOption { return func(a *Audit) { a.now = now } }

// NewAudit returns an Audit appending to log.
func NewAudit(log Auditor, opts ...AuditOption) *Audit {
	a := &Audit{log: log, now: time.Now}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Record durably appends one act done by the actor in ctx and returns its
// record (with its log index).
func (a *Audit) Record(ctx context.Context, act Act, target string, details map[string]any) (evidence.Record, error) {
	actor := ActorFrom(ctx)
	if details == nil {
		details = map[string]any{}
	}
	details["actor_role"] = string(actor.Role)
	at := a.now().UTC()
	body, err := json.Marshal(AuditBody{Act: act, Actor: actor.ClientID, Target: target, At: at, Details: details})
	if err != nil {
		return evidence.Record{}, fmt.Errorf("encode act %s: %w", act, err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return evidence.Record{}, fmt.Errorf("act id: %w", err)
	}
	recs, err := a.log.Append(ctx, evidence.Record{
		ID: id.String(), Kind: evidence.KindAdmin, Partner: actor.ClientID, At: at, Body: body,
	})
	if err != nil {
		return evidence.Record{}, fmt.Errorf("%w: %w", ErrAuditUnavailable, err)
	}
	return recs[0], nil
}

// do records act, then runs fn; see Audit. A nil Audit just runs fn, for
// uses that need no audit (tests of other concerns).
func (a *Audit) do(ctx context.Context, act Act, target string, details map[string]any, fn func() error) error {
	if a == nil {
		return fn()
	}
	rec, err := a.Record(ctx, act, target, details)
	if err != nil {
		return err
	}
	if err := fn(); err != nil {
		// The failure record must not be lost to the caller's deadline.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = a.Record(fctx, ActFailed, target, map[string]any{"act": string(act), "act_id": rec.ID, "failure": failureClass(err)})
		return err
	}
	return nil
}

// failureClass names why an act failed without the error text, which may
// carry identifiers that have no place in the log.
func failureClass(err error) string {
	switch {
	case errors.Is(err, ErrConflict):
		return "conflict"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "interrupted"
	}
	return "error"
}

// ActReader reads evidence records of one kind in log order; the stores
// keep an index for it, since checks vastly outnumber administrative acts.
type ActReader interface {
	// RecordsOfKind returns up to limit records of kind with index greater
	// than after (-1: from the start), in index order.
	RecordsOfKind(ctx context.Context, kind evidence.Kind, after int64, limit int) ([]evidence.Record, error)
}

// ActView is an administrative act as read back from the evidence log.
// Body is the recorded AuditBody unless the record's body was erased or
// no longer matches its hash (Status says which).
type ActView struct {
	LogIndex   uint64
	ID         string
	RecordHash [32]byte
	Status     evidence.BodyStatus
	Body       *AuditBody
}

// Acts reads the administrative acts for administrators and auditors.
type Acts struct {
	store ActReader
}

// NewActs returns the reader of administrative acts.
func NewActs(store ActReader) *Acts { return &Acts{store: store} }

// List returns up to limit acts recorded after log index after (-1: from
// the start), in log order.
func (a *Acts) List(ctx context.Context, after int64, limit int) ([]ActView, error) {
	if limit <= 0 || limit > MaxPage {
		limit = MaxPage
	}
	recs, err := a.store.RecordsOfKind(ctx, evidence.KindAdmin, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]ActView, len(recs))
	for i, r := range recs {
		v := ActView{LogIndex: r.Index, ID: r.ID, RecordHash: r.Hash}
		switch {
		case len(r.Body) == 0 && len(r.Salt) == 0:
			v.Status = evidence.BodyErased
		case evidence.RecordHash(r.Salt, r.Body) != r.Hash:
			v.Status = evidence.BodyAltered
		default:
			var b AuditBody
			if err := json.Unmarshal(r.Body, &b); err != nil {
				v.Status = evidence.BodyAltered
				break
			}
			v.Status, v.Body = evidence.BodyIntact, &b
		}
		out[i] = v
	}
	return out, nil
}
