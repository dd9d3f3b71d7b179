package storeutil

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/credgate/credgate/policy"
)

// lifecycleDoc is the entries.lifecycle JSON column: the parts of an entry
// the lifecycle adds, kept in one document so that adding a field does not
// need a migration.
type lifecycleDoc struct {
	ParticularlySerious bool                     `json:"particularly_serious,omitempty"`
	ExitByApplication   bool                     `json:"exit_by_application,omitempty"`
	Repairs             []policy.Repair          `json:"repairs,omitempty"`
	Exits               []policy.ExitApplication `json:"exits,omitempty"`
	Derivation          *policy.Derivation       `json:"derivation,omitempty"`
	RevocationCause     *policy.Cause            `json:"revocation_cause,omitempty"`
}

// encodeLifecycle encodes the lifecycle parts of a normalised entry; an
// entry without any encodes as "{}".
func encodeLifecycle(e policy.Entry) ([]byte, error) {
	return json.Marshal(lifecycleDoc{
		ParticularlySerious: e.ParticularlySerious, ExitByApplication: e.ExitByApplication,
		Repairs: e.Repairs, Exits: e.Exits, Derivation: e.Derivation, RevocationCause: e.RevocationCause,
	})
}

// decodeLifecycle fills e's lifecycle parts from the column; no data is
// an entry without any.
func decodeLifecycle(e *policy.Entry, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	var d lifecycleDoc
	if err := json.Unmarshal(data, &d); err != nil {
		return err
	}
	e.ParticularlySerious, e.ExitByApplication = d.ParticularlySerious, d.ExitByApplication
	e.Repairs, e.Exits, e.Derivation, e.RevocationCause = d.Repairs, d.Exits, d.Derivation, d.RevocationCause
	return nil
}

// normalizeLifecycle brings the lifecycle times of e to the stored
// precision and empty repeated fields to nil, without modifying the
// caller's slices.
func normalizeLifecycle(e policy.Entry) policy.Entry {
	if len(e.Objections) > 0 {
		for i := range e.Objections {
			o := &e.Objections[i]
			o.DueAt = TimePtr(o.DueAt)
			if len(o.EvidenceRefs) == 0 {
				o.EvidenceRefs = nil
			}
		}
	}
	if len(e.Repairs) == 0 {
		e.Repairs = nil
	} else {
		rs := slices.Clone(e.Repairs)
		for i := range rs {
			r := &rs[i]
			r.AppliedAt = Time(r.AppliedAt)
			r.DueAt, r.ReviewedAt, r.DecidedAt = TimePtr(r.DueAt), TimePtr(r.ReviewedAt), TimePtr(r.DecidedAt)
			if len(r.EvidenceRefs) == 0 {
				r.EvidenceRefs = nil
			}
		}
		e.Repairs = rs
	}
	if len(e.Exits) == 0 {
		e.Exits = nil
	} else {
		xs := slices.Clone(e.Exits)
		for i := range xs {
			x := &xs[i]
			x.AppliedAt = Time(x.AppliedAt)
			x.DecidedAt = TimePtr(x.DecidedAt)
			if len(x.EvidenceRefs) == 0 {
				x.EvidenceRefs = nil
			}
		}
		e.Exits = xs
	}
	if e.Derivation != nil {
		d := *e.Derivation
		d.ComputedAt = Time(d.ComputedAt)
		if len(d.Records) == 0 {
			d.Records = nil
		}
		if len(d.Trail) == 0 {
			d.Trail = nil
		}
		e.Derivation = &d
	}
	if e.RevocationCause != nil {
		c := *e.RevocationCause
		e.RevocationCause = &c
	}
	return e
}

// Proceeding kinds of the entry_proceedings index.
const (
	KindObjection = "objection"
	KindRepair    = "repair"
	KindExit      = "exit"
)

// ProceedingRow is one row of the entry_proceedings index: an objection,
// repair or exit application of an entry, open until decided.
type ProceedingRow struct {
	ID       string
	Kind     string
	OpenedAt time.Time
	DueAt    *time.Time
	ClosedAt *time.Time
}

// Proceedings lists the proceedings of a normalised entry.
func Proceedings(e policy.Entry) []ProceedingRow {
	var out []ProceedingRow
	for _, o := range e.Objections {
		out = append(out, ProceedingRow{ID: o.ID, Kind: KindObjection, OpenedAt: o.FiledAt, DueAt: o.DueAt, ClosedAt: o.DecidedAt})
	}
	for _, r := range e.Repairs {
		out = append(out, ProceedingRow{ID: r.ID, Kind: KindRepair, OpenedAt: r.AppliedAt, DueAt: r.DueAt, ClosedAt: r.DecidedAt})
	}
	for _, x := range e.Exits {
		out = append(out, ProceedingRow{ID: x.ID, Kind: KindExit, OpenedAt: x.AppliedAt, ClosedAt: x.DecidedAt})
	}
	return out
}

// NormalizeRecord brings a violation record's times to the stored
// precision and empty references to nil.
func NormalizeRecord(r policy.ViolationRecord) policy.ViolationRecord {
	r.DecidedAt, r.RecordedAt = Time(r.DecidedAt), Time(r.RecordedAt)
	if len(r.EvidenceRefs) == 0 {
		r.EvidenceRefs = nil
	}
	return r
}
