// Package storeutil holds the encoding rules the storage adapters share, so
// that SQLite and PostgreSQL store and return exactly the same values: times
// in UTC at microsecond precision, repeated fields as JSON arrays, and the
// person links that index an entry's responsible persons.
package storeutil

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// Time is t as the stores keep it: UTC, truncated to the microsecond.
func Time(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// TimePtr is Time for an optional time; nil stays nil.
func TimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := Time(*t)
	return &v
}

// Limit is the number of rows a listing returns for a requested limit:
// MaxPage when the request is zero, negative or larger.
func Limit(n int) int {
	if n <= 0 || n > service.MaxPage {
		return service.MaxPage
	}
	return n
}

// NormalizeEntry brings every time in e, those inside objections included,
// to the stored precision, and every empty repeated field to nil. It does
// not modify the caller's slices.
func NormalizeEntry(e policy.Entry) policy.Entry {
	e.DecidedAt = Time(e.DecidedAt)
	e.PublishedAt = Time(e.PublishedAt)
	e.ValidUntil = TimePtr(e.ValidUntil)
	e.RevokedAt = TimePtr(e.RevokedAt)
	e.CreatedAt = Time(e.CreatedAt)
	e.UpdatedAt = Time(e.UpdatedAt)
	if len(e.EvidenceRefs) == 0 {
		e.EvidenceRefs = nil
	}
	if len(e.ResponsiblePersons) == 0 {
		e.ResponsiblePersons = nil
	}
	if len(e.Objections) == 0 {
		e.Objections = nil
	} else {
		objs := slices.Clone(e.Objections)
		for i := range objs {
			objs[i].FiledAt = Time(objs[i].FiledAt)
			objs[i].DecidedAt = TimePtr(objs[i].DecidedAt)
		}
		e.Objections = objs
	}
	return normalizeLifecycle(e)
}

// NormalizePartner brings p's times to the stored precision and an empty
// action list to nil.
func NormalizePartner(p service.Partner) service.Partner {
	p.CreatedAt = Time(p.CreatedAt)
	p.UpdatedAt = Time(p.UpdatedAt)
	p.RevokedAt = TimePtr(p.RevokedAt)
	if len(p.Actions) == 0 {
		p.Actions = nil
	}
	if len(p.SubjectKinds) == 0 {
		p.SubjectKinds = nil
	}
	if len(p.Credentials) == 0 {
		p.Credentials = nil
	} else {
		creds := slices.Clone(p.Credentials)
		for i := range creds {
			creds[i].CreatedAt = Time(creds[i].CreatedAt)
			creds[i].ExpiresAt = TimePtr(creds[i].ExpiresAt)
		}
		p.Credentials = creds
	}
	return p
}

// PartnerJSON is a partner's repeated fields encoded as JSON arrays.
type PartnerJSON struct {
	Actions      []byte
	Credentials  []byte
	SubjectKinds []byte
}

// EncodePartner encodes the repeated fields of a normalised partner.
func EncodePartner(p service.Partner) (PartnerJSON, error) {
	var (
		out PartnerJSON
		err error
	)
	if out.Actions, err = MarshalList(p.Actions); err != nil {
		return PartnerJSON{}, fmt.Errorf("partner %q: actions: %w", p.ID, err)
	}
	if out.Credentials, err = MarshalList(p.Credentials); err != nil {
		return PartnerJSON{}, fmt.Errorf("partner %q: credentials: %w", p.ID, err)
	}
	if out.SubjectKinds, err = MarshalList(p.SubjectKinds); err != nil {
		return PartnerJSON{}, fmt.Errorf("partner %q: subject_kinds: %w", p.ID, err)
	}
	return out, nil
}

// DecodePartner decodes stored JSON arrays into p's repeated fields and
// normalises the result.
func DecodePartner(p *service.Partner, j PartnerJSON) error {
	var err error
	if p.Actions, err = UnmarshalList[string](j.Actions); err != nil {
		return fmt.Errorf("partner %q: actions: %w", p.ID, err)
	}
	if p.Credentials, err = UnmarshalList[service.Credential](j.Credentials); err != nil {
		return fmt.Errorf("partner %q: credentials: %w", p.ID, err)
	}
	if p.SubjectKinds, err = UnmarshalList[policy.SubjectKind](j.SubjectKinds); err != nil {
		return fmt.Errorf("partner %q: subject_kinds: %w", p.ID, err)
	}
	*p = NormalizePartner(*p)
	return nil
}

// EntryJSON is an entry's repeated fields encoded as JSON arrays.
type EntryJSON struct {
	EvidenceRefs       []byte
	Objections         []byte
	ResponsiblePersons []byte
	// Lifecycle is the lifecycle document (repairs, exits, derivation …),
	// a JSON object.
	Lifecycle []byte
}

// EncodeEntry encodes the repeated fields of a normalised entry. Empty
// fields encode as "[]", never "null".
func EncodeEntry(e policy.Entry) (EntryJSON, error) {
	var (
		out EntryJSON
		err error
	)
	if out.EvidenceRefs, err = MarshalList(e.EvidenceRefs); err != nil {
		return EntryJSON{}, fmt.Errorf("entry %q: evidence_refs: %w", e.ID, err)
	}
	if out.Objections, err = MarshalList(e.Objections); err != nil {
		return EntryJSON{}, fmt.Errorf("entry %q: objections: %w", e.ID, err)
	}
	if out.ResponsiblePersons, err = MarshalList(e.ResponsiblePersons); err != nil {
		return EntryJSON{}, fmt.Errorf("entry %q: responsible_persons: %w", e.ID, err)
	}
	if out.Lifecycle, err = encodeLifecycle(e); err != nil {
		return EntryJSON{}, fmt.Errorf("entry %q: lifecycle: %w", e.ID, err)
	}
	return out, nil
}

// DecodeEntry decodes stored JSON arrays into e's repeated fields and
// normalises the result.
func DecodeEntry(e *policy.Entry, j EntryJSON) error {
	var err error
	if e.EvidenceRefs, err = UnmarshalList[string](j.EvidenceRefs); err != nil {
		return fmt.Errorf("entry %q: evidence_refs: %w", e.ID, err)
	}
	if e.Objections, err = UnmarshalList[policy.Objection](j.Objections); err != nil {
		return fmt.Errorf("entry %q: objections: %w", e.ID, err)
	}
	if e.ResponsiblePersons, err = UnmarshalList[policy.ResponsiblePerson](j.ResponsiblePersons); err != nil {
		return fmt.Errorf("entry %q: responsible_persons: %w", e.ID, err)
	}
	if err = decodeLifecycle(e, j.Lifecycle); err != nil {
		return fmt.Errorf("entry %q: lifecycle: %w", e.ID, err)
	}
	*e = NormalizeEntry(*e)
	return nil
}

// MarshalList encodes v as a JSON array; nil encodes as "[]".
func MarshalList[T any](v []T) ([]byte, error) {
	if len(v) == 0 {
		return []byte("[]"), nil
	}
	return json.Marshal(v)
}

// UnmarshalList decodes a JSON array; an empty array, "null" or no data
// decode as nil.
func UnmarshalList[T any](data []byte) ([]T, error) {
	if len(data) == 0 {
		return nil, nil
	}
	var v []T
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	if len(v) == 0 {
		return nil, nil
	}
	return v, nil
}

// PersonLink is one row of the entry_persons index.
type PersonLink struct {
	PersonID string
	Role     policy.Role
}

// PersonLinks lists the distinct (person, role) pairs e names, in order of
// first appearance.
func PersonLinks(e policy.Entry) []PersonLink {
	out := make([]PersonLink, 0, len(e.ResponsiblePersons))
	for _, p := range e.ResponsiblePersons {
		l := PersonLink{PersonID: p.ID, Role: p.Role}
		if !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}
