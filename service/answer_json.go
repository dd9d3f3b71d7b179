package service

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// The check answer's JSON without reflection. The answer is encoded once
// per check (its bytes are the evidence record's body and, with the
// receipt, the answer sent), and through encoding/json that was the
// largest single cost of the handler path. appendJSON writes byte for
// byte what json.Marshal writes (TestAnswerJSONAsEncodingJSON): strings
// that encoding/json would escape, and values with a type of their own
// (a measure's scope), go through encoding/json one by one; a time
// encoding/json refuses makes the whole answer go through it, so that the
// error is its error.

// appendJSON appends the answer's JSON, without the receipt (the recorded
// body); false when json.Marshal must encode it instead.
func (a *CheckAnswer) appendJSON(b []byte) ([]byte, bool) {
	var ok bool
	b = append(b, `{"check_id":`...)
	b = appendJSONString(b, a.CheckID)
	b = append(b, `,"partner":`...)
	b = appendJSONString(b, a.Partner)
	b = append(b, `,"subject":{"id":`...)
	b = appendJSONString(b, a.Subject.ID)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, string(a.Subject.Kind))
	b = append(b, `},"action":`...)
	b = appendJSONString(b, a.Action)
	if a.Reference != "" {
		b = append(b, `,"reference":`...)
		b = appendJSONString(b, a.Reference)
	}
	if a.IdempotencyKey != "" {
		b = append(b, `,"idempotency_key":`...)
		b = appendJSONString(b, a.IdempotencyKey)
	}
	b = append(b, `,"outcome":`...)
	b = appendJSONString(b, string(a.Outcome))
	b = append(b, `,"measures":`...)
	if a.Measures == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range a.Measures {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = a.Measures[i].appendJSON(b); !ok {
				return b, false
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"entries":`...)
	if a.Entries == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range a.Entries {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = a.Entries[i].appendJSON(b); !ok {
				return b, false
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"catalog_revision":`...)
	b = appendJSONString(b, a.CatalogRevision)
	b = append(b, `,"data_as_of":`...)
	if b, ok = appendJSONTime(b, a.DataAsOf); !ok {
		return b, false
	}
	b = append(b, `,"checked_at":`...)
	if b, ok = appendJSONTime(b, a.CheckedAt); !ok {
		return b, false
	}
	if a.AsOf != nil {
		b = append(b, `,"as_of":`...)
		if b, ok = appendJSONTime(b, *a.AsOf); !ok {
			return b, false
		}
	}
	if a.ValidAt != nil {
		b = append(b, `,"valid_at":`...)
		if b, ok = appendJSONTime(b, *a.ValidAt); !ok {
			return b, false
		}
	}
	b = append(b, `,"context":`...)
	b = a.Context.appendJSON(b)
	if u := a.Unverifiable; u != nil {
		b = append(b, `,"unverifiable":{"reason":`...)
		b = appendJSONString(b, u.Reason)
		b = append(b, `,"detail":`...)
		b = appendJSONString(b, u.Detail)
		if u.Source != "" {
			b = append(b, `,"source":`...)
			b = appendJSONString(b, u.Source)
		}
		b = append(b, '}')
	}
	if a.Receipt != nil {
		b = append(b, `,"receipt":`...)
		var err error
		if b, err = a.Receipt.appendJSON(b); err != nil {
			return b, false
		}
	}
	return append(b, '}'), true
}

func (c ContextView) appendJSON(b []byte) []byte {
	b = append(b, '{')
	sep := false
	for _, f := range [...]struct{ name, v string }{
		{`"region":`, c.Region}, {`"industry":`, c.Industry},
		{`"subject_type":`, c.SubjectType}, {`"employer_type":`, c.EmployerType},
	} {
		if f.v == "" {
			continue
		}
		if sep {
			b = append(b, ',')
		}
		b = append(b, f.name...)
		b = appendJSONString(b, f.v)
		sep = true
	}
	return append(b, '}')
}

func (m *MeasureView) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, m.ID)
	b = append(b, `,"list":`...)
	b = appendJSONString(b, m.List)
	b = append(b, `,"effect":`...)
	b = appendJSONString(b, string(m.Effect))
	b = append(b, `,"mandatory":`...)
	b = strconv.AppendBool(b, m.Mandatory)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, string(m.Status))
	b = append(b, `,"text":`...)
	b = appendJSONString(b, m.Text)
	b = append(b, `,"legal_basis":`...)
	b = appendJSONString(b, m.LegalBasis)
	b = append(b, `,"authority":`...)
	b = appendJSONString(b, m.Authority)
	b = append(b, `,"source":`...)
	b = appendJSONString(b, m.Source)
	if m.EntryID != "" {
		b = append(b, `,"entry_id":`...)
		b = appendJSONString(b, m.EntryID)
	}
	if m.Via != nil {
		b = append(b, `,"via":`...)
		b = m.Via.appendJSON(b)
	}
	if m.Until != nil {
		b = append(b, `,"until":`...)
		var ok bool
		if b, ok = appendJSONTime(b, *m.Until); !ok {
			return b, false
		}
	}
	if m.Basis != "" {
		b = append(b, `,"basis":`...)
		b = appendJSONString(b, string(m.Basis))
	}
	if m.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, m.Reason)
	}
	if m.Scope != nil {
		// A type of its own: encoding/json writes it.
		s, err := json.Marshal(m.Scope)
		if err != nil {
			return b, false
		}
		b = append(b, `,"scope":`...)
		b = append(b, s...)
	}
	if m.Placeholder != "" {
		b = append(b, `,"placeholder":`...)
		b = appendJSONString(b, m.Placeholder)
	}
	return append(b, '}'), true
}

func (e *EntryView) appendJSON(b []byte) ([]byte, bool) {
	var ok bool
	b = append(b, `{"id":`...)
	b = appendJSONString(b, e.ID)
	b = append(b, `,"list":`...)
	b = appendJSONString(b, e.List)
	b = append(b, `,"list_name":`...)
	b = appendJSONString(b, e.ListName)
	b = append(b, `,"list_kind":`...)
	b = appendJSONString(b, string(e.ListKind))
	b = append(b, `,"status":`...)
	b = appendJSONString(b, string(e.Status))
	if e.OriginatingDepartment != "" {
		b = append(b, `,"originating_department":`...)
		b = appendJSONString(b, e.OriginatingDepartment)
	}
	if e.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, e.Reason)
	}
	b = append(b, `,"legal_basis":`...)
	b = appendJSONString(b, e.LegalBasis)
	b = append(b, `,"decided_at":`...)
	if b, ok = appendJSONTime(b, e.DecidedAt); !ok {
		return b, false
	}
	b = append(b, `,"published_at":`...)
	if b, ok = appendJSONTime(b, e.PublishedAt); !ok {
		return b, false
	}
	if e.ValidUntil != nil {
		b = append(b, `,"valid_until":`...)
		if b, ok = appendJSONTime(b, *e.ValidUntil); !ok {
			return b, false
		}
	}
	if e.Via != nil {
		b = append(b, `,"via":`...)
		b = e.Via.appendJSON(b)
	}
	return append(b, '}'), true
}

func (v *ViaView) appendJSON(b []byte) []byte {
	b = append(b, `{"organization":`...)
	b = appendJSONString(b, v.Organization)
	b = append(b, `,"role":`...)
	b = appendJSONString(b, string(v.Role))
	return append(b, '}')
}

// appendJSONTime writes t as time.Time.MarshalJSON does (RFC 3339 with
// nanoseconds, quoted); false where MarshalJSON fails (a year outside
// 0–9999, a zone offset of a day or more).
func appendJSONTime(b []byte, t time.Time) ([]byte, bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		return b, false
	}
	if _, off := t.Zone(); off <= -24*60*60 || off >= 24*60*60 {
		return b, false
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), true
}

// appendJSONString writes s quoted; a string encoding/json would escape
// (quotes, backslashes, control characters, <, > and &, U+2028, U+2029,
// invalid UTF-8) is written by encoding/json.
func appendJSONString(b []byte, s string) []byte {
	if !plainJSONString(s) {
		q, _ := json.Marshal(s) // a string always encodes
		return append(b, q...)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plainJSONString reports whether json.Marshal writes s as its bytes
// between quotes.
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !plainJSONByte[c] {
			if c != 0xE2 {
				return false
			}
			if i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0xA8 || s[i+2] == 0xA9) {
				return false // U+2028, U+2029
			}
		}
	}
	return utf8.ValidString(s)
}

// plainJSONByte tells the bytes plainJSONString passes without a second
// look: all but control characters, '"', '\\', '<', '>', '&' and 0xE2 (the
// lead byte of U+2028 and U+2029). Read only: one lookup per byte instead
// of six comparisons, over the measures' long texts.
var plainJSONByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = true
	}
	for _, c := range []byte{'"', '\\', '<', '>', '&', 0xE2} {
		t[c] = false
	}
	return t
}()
