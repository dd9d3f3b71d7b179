package cache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/credgate/credgate/policy"
)

// ErrBadValue: a value read from Redis is not one this version wrote. It
// is treated as a miss (and overwritten), never trusted.
var ErrBadValue = errors.New("cache: malformed cached value")

// codecVersion is the first field of every value, so that a replica of
// another version reading it treats it as a miss instead of misreading it.
const codecVersion = 1

// maxCachedEntries bounds a decoded set: a subject is affected by a
// handful of entries, and a value claiming millions is not ours.
const maxCachedEntries = 10000

// wireSet is a subject's compiled entry set as Redis holds it.
type wireSet struct {
	V        int         `json:"v"`
	LoadedAt int64       `json:"at"` // unix nanoseconds of the store read
	Entries  []wireEntry `json:"e"`
}

// wireEntry is policy.Entry with its subject, which policy.Entry leaves
// out of its JSON. Embedding keeps every other field, including fields
// added to policy.Entry later, without touching this codec.
type wireEntry struct {
	policy.Entry
	Subject     string             `json:"s"`
	SubjectKind policy.SubjectKind `json:"k"`
}

// encodeSet is the Redis value of a set.
func encodeSet(s *set) ([]byte, error) {
	w := wireSet{V: codecVersion, LoadedAt: s.loadedAt, Entries: make([]wireEntry, len(s.entries))}
	for i := range s.entries {
		w.Entries[i] = wireEntry{Entry: s.entries[i], Subject: s.entries[i].Subject.Value, SubjectKind: s.entries[i].Subject.Kind}
	}
	return json.Marshal(w)
}

// decodeSet parses a Redis value, refusing anything this version did not
// write: unknown fields, another version, trailing data, implausible
// sizes or times.
func decodeSet(b []byte) (*set, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var w wireSet
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadValue, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrBadValue)
	}
	if w.V != codecVersion {
		return nil, fmt.Errorf("%w: version %d", ErrBadValue, w.V)
	}
	if w.LoadedAt <= 0 {
		return nil, fmt.Errorf("%w: no load time", ErrBadValue)
	}
	if len(w.Entries) > maxCachedEntries {
		return nil, fmt.Errorf("%w: %d entries", ErrBadValue, len(w.Entries))
	}
	s := &set{loadedAt: w.LoadedAt}
	if len(w.Entries) > 0 {
		s.entries = make([]policy.Entry, len(w.Entries))
	}
	for i, e := range w.Entries {
		if e.ID == "" || (e.SubjectKind != policy.KindOrganization && e.SubjectKind != policy.KindPerson) {
			return nil, fmt.Errorf("%w: entry %d has no id or an unknown subject kind", ErrBadValue, i)
		}
		e.Entry.Subject = policy.SubjectID{Kind: e.SubjectKind, Value: e.Subject}
		s.entries[i] = e.Entry
	}
	return s, nil
}
