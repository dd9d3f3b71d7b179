package upstream_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/upstream"
	"github.com/credgate/credgate/policy"
)

func TestMappingValidate(t *testing.T) {
	t.Parallel()
	if err := mapping().Validate(); err != nil {
		t.Fatalf("the test mapping: %v", err)
	}
	for name, change := range map[string]func(m *upstream.Mapping){
		"unknown field":          func(m *upstream.Mapping) { m.Fields["colour"] = "c" },
		"path and constant":      func(m *upstream.Mapping) { m.Constants["reason"] = "x" },
		"required field missing": func(m *upstream.Mapping) { delete(m.Fields, "subject_id") },
		"empty path":             func(m *upstream.Mapping) { m.Fields["reason"] = "" },
		"values without path":    func(m *upstream.Mapping) { m.Values = map[string]map[string]string{"list": {"a": "b"}} },
		"bad time format":        func(m *upstream.Mapping) { m.TimeFormat = "yesterday" },
		"persons without id":     func(m *upstream.Mapping) { m.Persons.ID = "" },
		"unknown role":           func(m *upstream.Mapping) { m.Persons.Roles["董事长"] = "chairman" },
		"role path and constant": func(m *upstream.Mapping) { m.Persons.RoleConstant = "legal_representative" },
	} {
		m := mapping()
		change(m)
		if err := m.Validate(); !errors.Is(err, upstream.ErrInvalidMapping) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestMapRecords(t *testing.T) {
	t.Parallel()
	m := &upstream.Mapping{
		Records: "", Key: "id",
		Fields: map[string]string{"subject_id": "who.code", "list": "kind", "reason": "why", "decided_at": "at.0",
			"published_at": "at.1", "evidence_refs": "docs"},
		Constants:  map[string]string{"originating_department": "税务局", "legal_basis": "《税收征收管理法》"},
		Values:     map[string]map[string]string{"list": {"A": "tax_major_violation"}},
		TimeFormat: "unix_ms",
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	body := `[
	 {"id": 7, "who": {"code": "91350100M000100Y43"}, "kind": "A", "why": "逃税", "at": [1767225600000, 1767312000000], "docs": ["税稽罚〔2026〕1号", 2]},
	 {"id": 8, "who": {"code": "91350100M000100Y43"}, "kind": "B", "why": "逃税", "at": [1, 2]},
	 {"who": {"code": "91350100M000100Y43"}, "kind": "A", "why": "逃税", "at": [1, 2]},
	 "not an object"
	]`
	p, err := m.MapRecords([]byte(body), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 1 || len(p.Bad) != 3 {
		t.Fatalf("%d items, %d bad: %+v", len(p.Items), len(p.Bad), p.Bad)
	}
	it := p.Items[0]
	if it.Key != "7" || it.Line != 10 || it.Input.List != "tax_major_violation" || it.Input.OriginatingDepartment != "税务局" ||
		!it.Input.DecidedAt.Equal(time.UnixMilli(1767225600000)) || len(it.Input.EvidenceRefs) != 2 || it.Input.EvidenceRefs[1] != "2" {
		t.Fatalf("mapped item: %+v", it)
	}
	for i, want := range []string{"no entry in the mapping's value table", "key: no value", "not a JSON object"} {
		if p.Bad[i].Line != 11+i || !strings.Contains(p.Bad[i].Err.Error(), want) {
			t.Errorf("bad record %d: line %d %v, want line %d and %q", i, p.Bad[i].Line, p.Bad[i].Err, 11+i, want)
		}
	}
	for name, body := range map[string]string{
		"trailing data":   `[] []`,
		"not json":        `<html>`,
		"object, not arr": `{"a": 1}`,
		"empty":           ``,
	} {
		if _, err := m.MapRecords([]byte(body), 1); !errors.Is(err, upstream.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestMapPersonsAndDates(t *testing.T) {
	t.Parallel()
	m := mapping()
	body := `{"data": {"list": [{"tyshxydm": "91350100M000100Y43", "ajh": "(2026)1", "sxyy": "r", "zxfy": "c",
	  "lasj": "2026-02-01", "fbrq": "2026-03-01T10:00:00+08:00",
	  "fr": [{"zjhm": "11010519491231002X", "js": "法定代表人"}, {"zjhm": "110105194912310021", "js": "股东"}]}]}}`
	p, err := m.MapRecords([]byte(body), 1)
	if err != nil || len(p.Items) != 1 {
		t.Fatalf("%v %+v", err, p)
	}
	in := p.Items[0].Input
	cst := time.FixedZone("CST", 8*3600)
	if !in.DecidedAt.Equal(time.Date(2026, 2, 1, 0, 0, 0, 0, cst)) || !in.PublishedAt.Equal(time.Date(2026, 3, 1, 10, 0, 0, 0, cst)) {
		t.Fatalf("dates: %v %v", in.DecidedAt, in.PublishedAt)
	}
	// An unmapped upstream role passes through as is: the catalogue
	// rejects it when the snapshot is prepared.
	if len(in.ResponsiblePersons) != 2 || in.ResponsiblePersons[0].Role != policy.RoleLegalRepresentative ||
		in.ResponsiblePersons[1].Role != "股东" {
		t.Fatalf("persons: %+v", in.ResponsiblePersons)
	}
}

// FuzzMapRecords: whatever an upstream sends, mapping never panics, and
// every record is either an item or a bad line, numbered in order.
func FuzzMapRecords(f *testing.F) {
	f.Add([]byte(`{"data": {"list": [{"tyshxydm": "91350100M000100Y43", "ajh": "(2026)1", "sxyy": "r", "zxfy": "c", "lasj": "2026-02-01", "fbrq": "2026-03-01", "fr": [{"zjhm": "11010519491231002X", "js": "法定代表人"}]}], "next": "/p?page=2"}}`))
	f.Add([]byte(`{"data": {"list": []}}`))
	f.Add([]byte(`{"data": {"list": [1, "x", null, {}]}}`))
	f.Add([]byte(`{"data": {"list": [{"tyshxydm": {"a": 1}, "fr": "x"}], "next": 5}}`))
	f.Add([]byte(`<html>`))
	m := mapping()
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := m.MapRecords(body, 1)
		if err != nil {
			return
		}
		n := len(p.Items) + len(p.Bad)
		lines := make([]bool, n+1)
		for _, it := range p.Items {
			if it.Line < 1 || it.Line > n || lines[it.Line] {
				t.Fatalf("item at line %d of %d", it.Line, n)
			}
			lines[it.Line] = true
		}
		for _, b := range p.Bad {
			if b.Line < 1 || b.Line > n || lines[b.Line] || b.Err == nil {
				t.Fatalf("bad record at line %d of %d: %v", b.Line, n, b.Err)
			}
			lines[b.Line] = true
		}
	})
}
