package cache

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/credgate/credgate/policy"
)

func sampleSet() *set {
	e := blackEntry("e1", "91110000MA0000031X")
	e.EvidenceRefs = []string{"文书 2026-1"}
	e.ResponsiblePersons = []policy.ResponsiblePerson{{ID: "11010519491231002X", Role: policy.RoleLegalRepresentative}}
	filed := e.PublishedAt.Add(time.Hour)
	e.Objections = []policy.Objection{{ID: "o1", FiledAt: filed, DecidedAt: &filed, Decision: "rejected"}}
	until := e.PublishedAt.AddDate(1, 0, 0)
	e.ValidUntil = &until
	e.ParticularlySerious = true
	return &set{entries: []policy.Entry{e, blackEntry("e2", "91110000MA0000032X")}, loadedAt: time.Now().UnixNano()}
}

func TestCodecRoundTrip(t *testing.T) {
	t.Parallel()
	for _, s := range []*set{sampleSet(), {loadedAt: 1}} {
		b, err := encodeSet(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeSet(b)
		if err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, s)
		}
	}
}

func TestCodecRefusesWhatItDidNotWrite(t *testing.T) {
	t.Parallel()
	for name, v := range map[string]string{
		"empty":         ``,
		"not json":      `garbage`,
		"other version": `{"v":2,"at":1,"e":[]}`,
		"no time":       `{"v":1,"e":[]}`,
		"unknown field": `{"v":1,"at":1,"e":[],"x":1}`,
		"trailing":      `{"v":1,"at":1,"e":[]} {}`,
		"bad kind":      `{"v":1,"at":1,"e":[{"id":"e","s":"S","k":"alien"}]}`,
		"no id":         `{"v":1,"at":1,"e":[{"s":"S","k":"person"}]}`,
	} {
		if _, err := decodeSet([]byte(v)); err == nil {
			t.Errorf("%s: decoded %q", name, v)
		}
	}
}

// FuzzDecodeSet: whatever Redis holds, decoding never panics, and what it
// accepts encodes back to a value that decodes to the same set.
func FuzzDecodeSet(f *testing.F) {
	b, _ := encodeSet(sampleSet())
	f.Add(b)
	f.Add([]byte(`{"v":1,"at":1,"e":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSet(b)
		if err != nil {
			return
		}
		once, err := encodeSet(s)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		s2, err := decodeSet(once)
		if err != nil {
			t.Fatalf("decode of re-encoded %s: %v", once, err)
		}
		twice, err := encodeSet(s2)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(once, twice) {
			t.Fatalf("not stable:\n%s\n%s", once, twice)
		}
	})
}
