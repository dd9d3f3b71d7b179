package service

import (
	"slices"
	"time"

	"github.com/credgate/credgate/policy"
)

// WithEntriesAudit records every administrative act on entries (created,
// patched, revoked, imported) in the evidence log before it is done.
func WithEntriesAudit(a *Audit) EntriesOption { return func(e *Entries) { e.audit = a } }

// maxImportIDs is how many entry ids an import's audit record lists; a
// larger import is identified by the count, the first and last ids and the
// SHA-256 of all ids, one per line, in file order.
const maxImportIDs = 1000

// entryDetails is what an audit record says about an entry: which subject
// and list, when published, never the free text of the case or the
// responsible persons' identity numbers (only how many there are).
func entryDetails(e policy.Entry) map[string]any {
	d := map[string]any{
		"entry_id": e.ID, "subject_id": e.Subject.Value, "subject_kind": string(e.Subject.Kind), "list": e.List,
		"published_at": e.PublishedAt.UTC().Format(time.RFC3339Nano), "responsible_persons": len(e.ResponsiblePersons),
		"version": e.Version,
	}
	if e.ValidUntil != nil {
		d["valid_until"] = e.ValidUntil.UTC().Format(time.RFC3339Nano)
	}
	return d
}

// patchDetails names the fields a patch changed, not their values: the
// entry's history is in the entry store; the audit log proves who changed
// it and when.
func patchDetails(e policy.Entry, p EntryPatch) map[string]any {
	d := entryDetails(e)
	var fields []string
	for name, set := range map[string]bool{
		"originating_department": p.OriginatingDepartment != nil, "reason": p.Reason != nil,
		"legal_basis": p.LegalBasis != nil, "evidence_refs": p.EvidenceRefs != nil, "decided_at": p.DecidedAt != nil,
		"published_at": p.PublishedAt != nil, "responsible_persons": p.ResponsiblePersons != nil,
	} {
		if set {
			fields = append(fields, name)
		}
	}
	slices.Sort(fields)
	d["changed"] = nonNil(fields)
	return d
}

func revokeDetails(e policy.Entry) map[string]any {
	d := entryDetails(e)
	d["revocation_reason"] = e.RevocationReason
	return d
}

func importDetails(entries []policy.Entry) map[string]any {
	d := newImportIDs()
	for _, e := range entries {
		d.add(e.ID)
	}
	return d.details()
}
