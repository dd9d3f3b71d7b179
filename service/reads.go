package service

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/policy"
)

// Staff reads of subjects' data. When an administrator or an auditor is
// shown a subject's data — a past check's answer, a record's receipt (which
// carries the record's body), an entry or a page of entries — the read is
// recorded in the evidence log as an act before the answer leaves, as the
// auditors' search of checks is (checks_searched): who (the actor in ctx),
// when, which records (their ids) and through which route (WithReadRoute).
// An answer whose act cannot be made durable is not given
// (ErrAuditUnavailable). One act per request, whatever the page holds.
//
// Acts name records by their ids, never by the subject's ID number, which
// those records already hold; only a lookup by subject (entries filtered
// by subject_id) names the subject looked up, as the acts on entries do,
// in the record's body, which can be erased like a check's.
//
// A partner reading its own check or receipt is not a staff read and is
// not recorded: the record is the partner's own evidence. Nor is an
// administrator's read of a record it made itself (its own check, its own
// act): the record already says that it was shown that data.

// Staff reads of partners' screening jobs and webhook deliveries: a job
// names its partner's file and counts its outcomes, its results each
// subject's answer; the deliveries list what was sent to which partner.
const (
	// ActScreeningRead: another partner's screening job (GET
	// /v1/screenings/{id} and its events); target the job id.
	ActScreeningRead Act = "screening_read"
	// ActScreeningResultsRead: another partner's screening results (GET
	// /v1/screenings/{id}/results, NDJSON or CSV), recorded before the
	// first line is sent; target the job id.
	ActScreeningResultsRead Act = "screening_results_read"
	// ActDeliveriesListed: a page of the webhook delivery log of another
	// partner, or of all (GET /v1/admin/deliveries, the console's
	// deliveries page), with its filter and the event ids shown.
	ActDeliveriesListed Act = "deliveries_listed"
)

type readRouteKey struct{}

// WithReadRoute returns ctx naming the route a read was asked through
// ("GET /v1/checks/:id", "console GET /console/entries/{id}"); the read
// acts record it as details.via.
func WithReadRoute(ctx context.Context, route string) context.Context {
	return context.WithValue(ctx, readRouteKey{}, route)
}

func readRoute(ctx context.Context) string {
	r, _ := ctx.Value(readRouteKey{}).(string)
	return r
}

// staffRead reports whether caller's read of a record made by owner (its
// evidence record's partner) is a staff read: an administrator's or an
// auditor's, of a record another made (a partner reads its own records
// only).
func staffRead(caller Caller, owner string) bool {
	return (caller.Role == RoleAdmin || caller.Role == RoleAuditor) && owner != caller.ClientID
}

// recordRead durably records a read act, by the actor in ctx or, when ctx
// names none, by caller (when given). A nil Audit records nothing (uses
// without an evidence log: tests of other concerns).
func recordRead(ctx context.Context, a *Audit, caller *Caller, act Act, target string, details map[string]any) error {
	if a == nil {
		return nil
	}
	if caller != nil && ActorFrom(ctx).Role == RoleSystem {
		ctx = WithActor(ctx, Actor{ClientID: caller.ClientID, Role: caller.Role})
	}
	if r := readRoute(ctx); r != "" {
		details["via"] = r
	}
	if _, err := a.Record(ctx, act, target, details); err != nil {
		return fmt.Errorf("record %s: %w", act, err)
	}
	return nil
}

// readAudit records the checker's read acts through the log its checks go
// to, as subject status answers are: an act is never spooled (a spooling
// log appends it or fails), so a read fails closed when the log is away.
func (c *Checker) readAudit() *Audit { return NewAudit(c.log, WithAuditClock(c.now)) }

// checkReadDetails names a check read: its id, position and partner.
func checkReadDetails(rec evidence.Record) map[string]any {
	return map[string]any{"check_id": rec.ID, "log_index": rec.Index, "partner": rec.Partner}
}

// ReadReceipt is Receipts.Receipt for caller, recorded as receipt_read
// when caller is staff: a receipt carries its record's body (a check's
// subject and answer, an act's details).
func (c *Checker) ReadReceipt(ctx context.Context, r *Receipts, caller Caller, id string) (evidence.Receipt, error) {
	rc, err := r.Receipt(ctx, caller, id)
	if err != nil || !staffRead(caller, rc.Record.Partner) {
		return rc, err
	}
	if err := recordRead(ctx, c.readAudit(), &caller, ActReceiptRead, rc.Record.ID,
		map[string]any{"record_id": rc.Record.ID, "kind": string(rc.Record.Kind), "partner": rc.Record.Partner, "log_index": rc.LeafIndex}); err != nil {
		return evidence.Receipt{}, err
	}
	return rc, nil
}

// ShowRecord is a record's receipt and, when it is a check, its answer,
// read together (the console's evidence page) and recorded as one act for
// staff: check_read for a check (details.receipt true), receipt_read for
// any other record.
func (c *Checker) ShowRecord(ctx context.Context, r *Receipts, caller Caller, id string) (evidence.Receipt, *CheckAnswer, error) {
	rc, err := r.Receipt(ctx, caller, id)
	if err != nil {
		return evidence.Receipt{}, nil, err
	}
	if rc.Record.Kind != evidence.KindCheck {
		if staffRead(caller, rc.Record.Partner) {
			if err := recordRead(ctx, c.readAudit(), &caller, ActReceiptRead, rc.Record.ID,
				map[string]any{"record_id": rc.Record.ID, "kind": string(rc.Record.Kind), "partner": rc.Record.Partner, "log_index": rc.LeafIndex}); err != nil {
				return evidence.Receipt{}, nil, err
			}
		}
		return rc, nil, nil
	}
	ans, rec, err := c.pastCheck(ctx, caller, id)
	if err != nil {
		return evidence.Receipt{}, nil, err
	}
	if staffRead(caller, rec.Partner) {
		d := checkReadDetails(rec)
		d["receipt"] = true
		if err := recordRead(ctx, c.readAudit(), &caller, ActCheckRead, rec.ID, d); err != nil {
			return evidence.Receipt{}, nil, err
		}
	}
	return rc, &ans, nil
}

// Read is Get for a member of staff: the entry (its subject, reason and
// responsible persons), recorded as entry_read before it is returned.
func (s *Entries) Read(ctx context.Context, id string) (policy.Entry, error) {
	e, err := s.Get(ctx, id)
	if err != nil {
		return policy.Entry{}, err
	}
	if err := recordRead(ctx, s.audit, nil, ActEntryRead, e.ID,
		map[string]any{"entry_id": e.ID, "list": e.List, "version": e.Version}); err != nil {
		return policy.Entry{}, err
	}
	return e, nil
}

// ReadList is List for a member of staff, recorded as entries_listed
// before it is returned: the filter (the subject looked up, when one is)
// and the ids of the entries shown.
func (s *Entries) ReadList(ctx context.Context, f EntryFilter) ([]policy.Entry, error) {
	es, err := s.List(ctx, f)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.ID
	}
	d := map[string]any{"list": f.List, "after": f.After, "count": len(es), "entry_ids": ids}
	if f.Subject != "" {
		// List parsed it already: this cannot fail.
		if sub, err := policy.ParseSubjectID(f.Subject); err == nil {
			d["subject_id"], d["subject_kind"] = sub.Value, string(sub.Kind)
		}
	}
	if err := recordRead(ctx, s.audit, nil, ActEntriesListed, "entries", d); err != nil {
		return nil, err
	}
	return es, nil
}

// maxReadIDs is how many record ids a read act lists; a larger answer
// (a subject's violation records, up to MaxSubjectRecords) is named by its
// count and its subject.
const maxReadIDs = MaxPage

// ReadProceedings is ListProceedings for a member of staff (the open
// objections, repairs or exits, with their entries' subjects and the
// grounds given), recorded as proceedings_listed before it is returned:
// the filter and the ids of the proceedings and entries shown.
func (l *Lifecycle) ReadProceedings(ctx context.Context, kind ProceedingKind, state, after string, limit int) ([]Proceeding, time.Time, error) {
	ps, now, err := l.ListProceedings(ctx, kind, state, after, limit)
	if err != nil {
		return nil, now, err
	}
	ids, entries := make([]string, len(ps)), make([]string, len(ps))
	for i, p := range ps {
		ids[i], entries[i] = p.ID, p.Entry.ID
	}
	if err := recordRead(ctx, l.entries.audit, nil, ActProceedingsListed, string(kind), map[string]any{"kind": string(kind), "state": state,
		"after": after, "count": len(ps), "proceeding_ids": ids, "entry_ids": entries}); err != nil {
		return nil, now, err
	}
	return ps, now, nil
}

// ReadSubjectViolations is SubjectViolations for a member of staff,
// recorded as violations_read before it is returned: the subject looked
// up and the ids of its records (their count alone past maxReadIDs).
func (l *Lifecycle) ReadSubjectViolations(ctx context.Context, rawSubject string) (policy.SubjectID, []policy.ViolationRecord, []policy.Standing, error) {
	sub, recs, standings, err := l.SubjectViolations(ctx, rawSubject)
	if err != nil {
		return policy.SubjectID{}, nil, nil, err
	}
	d := map[string]any{"subject_id": sub.Value, "subject_kind": string(sub.Kind), "count": len(recs)}
	if len(recs) <= maxReadIDs {
		ids := make([]string, len(recs))
		for i, r := range recs {
			ids[i] = r.ID
		}
		d["record_ids"] = ids
	}
	if err := recordRead(ctx, l.entries.audit, nil, ActViolationsRead, "violations", d); err != nil {
		return policy.SubjectID{}, nil, nil, err
	}
	return sub, recs, standings, nil
}

// screeningReadDetails names a screening job read: its id, partner,
// action and state, never a subject of its file.
func screeningReadDetails(j ScreeningJob) map[string]any {
	return map[string]any{"screening_id": j.ID, "partner": j.Partner, "action": j.Action, "state": string(j.State), "total": j.Total}
}

// Read is Get recorded as screening_read when caller is staff reading
// another partner's job (the job's file and its counts of outcomes). The
// events stream reads the job with it once, then polls with Get.
func (s *Screenings) Read(ctx context.Context, caller Caller, id string) (ScreeningJob, error) {
	j, err := s.Get(ctx, caller, id)
	if err != nil || !staffRead(caller, j.Partner) {
		return j, err
	}
	if err := recordRead(ctx, s.checker.readAudit(), &caller, ActScreeningRead, j.ID, screeningReadDetails(j)); err != nil {
		return ScreeningJob{}, err
	}
	return j, nil
}

// recordResultsRead records staff caller's download of j's results as
// screening_results_read, once the results are found and opened and
// before anything of them is written.
func (s *Screenings) recordResultsRead(ctx context.Context, caller Caller, j ScreeningJob) error {
	if !staffRead(caller, j.Partner) {
		return nil
	}
	d := screeningReadDetails(j)
	d["record_id"], d["tree_size"] = j.RecordID, j.TreeSize
	return recordRead(ctx, s.checker.readAudit(), &caller, ActScreeningResultsRead, j.ID, d)
}

// deliveriesListedDetails names a page of deliveries shown: the filter
// and the events' ids and partners.
func deliveriesListedDetails(f DeliveryFilter, ds []Delivery) map[string]any {
	ids := make([]string, len(ds))
	var partners []string
	for i, d := range ds {
		ids[i] = d.Event.ID
		if !slices.Contains(partners, d.Event.Partner) {
			partners = append(partners, d.Event.Partner)
		}
	}
	slices.Sort(partners)
	return map[string]any{"partner": f.Partner, "state": f.State, "after": f.After, "count": len(ds),
		"event_ids": ids, "partners": partners}
}
