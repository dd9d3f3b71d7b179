package client

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"github.com/credgate/credgate/evidence"
)

// The client's types are checked against openapi.yaml, the contract, so
// that a member the server sends is not silently dropped (or mistyped)
// by the client.

var (
	specOnce  sync.Once
	specModel *v3.Document
	specErr   error
)

func loadSpec(t *testing.T) *v3.Document {
	t.Helper()
	specOnce.Do(func() {
		raw, err := os.ReadFile(filepath.Join("..", "openapi.yaml"))
		if err != nil {
			specErr = err
			return
		}
		doc, err := libopenapi.NewDocument(raw)
		if err != nil {
			specErr = err
			return
		}
		m, err := doc.BuildV3Model()
		if err != nil {
			specErr = err
			return
		}
		specModel = &m.Model
	})
	if specErr != nil {
		t.Fatal(specErr)
	}
	return specModel
}

func specSchema(t *testing.T, name string) *base.Schema {
	t.Helper()
	p, ok := loadSpec(t).Components.Schemas.Get(name)
	if !ok {
		t.Fatalf("openapi.yaml has no schema %s", name)
	}
	return p.Schema()
}

// jsonFields are a struct's members by JSON name.
func jsonFields(typ reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f
	}
	return out
}

// absentIsZero reports whether a member of type typ that the server
// leaves out decodes to something that cannot be mistaken for a value it
// sent: nil, or an empty string.
func absentIsZero(typ reflect.Type) bool {
	switch typ.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface, reflect.String:
		return true
	}
	return false
}

// TestTypesMatchContract: each client type has exactly the members of its
// openapi.yaml schema; an optional member of an answer decodes to nil or
// "" when absent (a log_index of 0 is a real position); an optional
// member of a request is left out when unset.
func TestTypesMatchContract(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		schema  string
		typ     reflect.Type
		request bool
	}{
		{"CheckRequest", reflect.TypeFor[CheckRequest](), true},
		{"CheckContext", reflect.TypeFor[CheckContext](), true},
		{"BatchRequest", reflect.TypeFor[BatchRequest](), true},
		{"CheckAnswer", reflect.TypeFor[CheckAnswer](), false},
		{"SubjectView", reflect.TypeFor[SubjectView](), false},
		{"ContextView", reflect.TypeFor[CheckContext](), false},
		{"Unverifiable", reflect.TypeFor[Unverifiable](), false},
		{"Receipt", reflect.TypeFor[CheckReceipt](), false},
		{"SpoolPromise", reflect.TypeFor[evidence.Promise](), false},
		{"BatchAnswer", reflect.TypeFor[BatchAnswer](), false},
		{"BatchResult", reflect.TypeFor[BatchResult](), false},
		{"Catalog", reflect.TypeFor[Catalog](), false},
		{"Action", reflect.TypeFor[CatalogAction](), false},
		{"ScopeTerm", reflect.TypeFor[ScopeTerm](), false},
	} {
		s := specSchema(t, tc.schema)
		fields := jsonFields(tc.typ)
		var props []string
		for name := range s.Properties.KeysFromOldest() {
			props = append(props, name)
			f, ok := fields[name]
			switch {
			case !ok:
				t.Errorf("%s: %s has no member %q", tc.schema, tc.typ, name)
			case slices.Contains(s.Required, name):
			case tc.request && !strings.Contains(f.Tag.Get("json"), ",omitempty"):
				t.Errorf("%s: optional %q of %s is sent even when unset (no omitempty)", tc.schema, name, tc.typ)
			case !tc.request && !absentIsZero(f.Type):
				t.Errorf("%s: optional %q of %s is a %s: when absent it reads as a value", tc.schema, name, tc.typ, f.Type)
			}
		}
		for name := range fields {
			if !slices.Contains(props, name) {
				t.Errorf("%s: %s has %q, which the contract does not", tc.schema, tc.typ, name)
			}
		}
	}
	// The context vocabularies and regions are what the catalogue says.
	cat := specSchema(t, "Catalog")
	regions, _ := cat.Properties.Get("regions")
	var names []string
	for name := range regions.Schema().Items.A.Schema().Properties.KeysFromOldest() {
		names = append(names, name)
	}
	if got := slices.Sorted(func(yield func(string) bool) {
		for n := range jsonFields(reflect.TypeFor[CatalogRegion]()) {
			if !yield(n) {
				return
			}
		}
	}); !slices.Equal(got, slices.Sorted(slices.Values(names))) {
		t.Errorf("CatalogRegion has %v, the contract %v", got, names)
	}
}

// TestOutcomesMatchContract: the Outcome constants are the contract's
// enum, unverifiable included.
func TestOutcomesMatchContract(t *testing.T) {
	t.Parallel()
	var enum []Outcome
	for _, n := range specSchema(t, "Outcome").Enum {
		enum = append(enum, Outcome(n.Value))
	}
	consts := []Outcome{OutcomeProhibit, OutcomeRestrict, OutcomeStrictReview, OutcomeReference, OutcomeIncentive,
		OutcomeClear, OutcomeUnverifiable}
	if !slices.Equal(enum, consts) {
		t.Fatalf("openapi.yaml's outcomes %v, the client's %v", enum, consts)
	}
	if f, _ := reflect.TypeFor[CheckAnswer]().FieldByName("Outcome"); f.Type != reflect.TypeFor[Outcome]() {
		t.Fatalf("CheckAnswer.Outcome is a %s", f.Type)
	}
}

// responseExamples are the JSON examples of an operation's 200 answer.
func responseExamples(t *testing.T, path, method string) map[string][]byte {
	t.Helper()
	item, ok := loadSpec(t).Paths.PathItems.Get(path)
	if !ok {
		t.Fatalf("openapi.yaml has no path %s", path)
	}
	op := item.GetOperations().GetOrZero(method)
	r, _ := op.Responses.Codes.Get("200")
	mt, _ := r.Content.Get("application/json")
	out := map[string][]byte{}
	add := func(name string, n interface{ Decode(any) error }) {
		var v any
		if err := n.Decode(&v); err != nil {
			t.Fatalf("%s %s example %s: %v", method, path, name, err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = b
	}
	if mt.Example != nil {
		add("example", mt.Example)
	}
	for name, ex := range mt.Examples.FromOldest() {
		add(name, ex.Value)
	}
	if len(out) == 0 {
		t.Fatalf("%s %s: no examples", method, path)
	}
	return out
}

// TestContractExamplesDecode: every example answer of POST /v1/checks
// and POST /v1/checks:batch decodes into the client's types with no member
// left over, and its receipt's log_index is kept, 0 included.
func TestContractExamplesDecode(t *testing.T) {
	t.Parallel()
	strict := func(b []byte, v any) error {
		d := json.NewDecoder(strings.NewReader(string(b)))
		d.DisallowUnknownFields()
		return d.Decode(v)
	}
	for name, b := range responseExamples(t, "/v1/checks", "post") {
		var a CheckAnswer
		if err := strict(b, &a); err != nil {
			t.Errorf("check example %s: %v", name, err)
			continue
		}
		if a.Subject.ID == "" || a.Subject.Kind == "" || a.CatalogRevision == "" || a.Receipt.LogIndex == nil ||
			a.Receipt.LeafHash == "" || a.Receipt.Spooled() {
			t.Errorf("check example %s decoded as %+v", name, a)
		}
		if name == "restricted_organisation" && (*a.Receipt.LogIndex != 0 || a.Outcome != OutcomeRestrict) {
			t.Errorf("check example %s: receipt %+v, outcome %s", name, a.Receipt, a.Outcome)
		}
		if name == "out_of_scope" && (a.Context == nil || a.Context.Region != "440300") {
			t.Errorf("check example %s: context %+v", name, a.Context)
		}
	}
	for name, b := range responseExamples(t, "/v1/checks:batch", "post") {
		var raw struct {
			Action  string `json:"action"`
			Results []struct {
				Index   int          `json:"index"`
				Check   *CheckAnswer `json:"check"`
				Problem *Error       `json:"problem"`
			} `json:"results"`
		}
		if err := strict(b, &raw); err != nil {
			t.Errorf("batch example %s: %v", name, err)
		}
	}
}

// spooledAnswer is a check answer whose record a replica spooled, with a
// real promise signed by signer.
func spooledAnswer(t *testing.T, signer *evidence.Signer) []byte {
	t.Helper()
	rec := evidence.Record{ID: "01a21d8c-093d-7457-b696-fd5f540357ab", Kind: evidence.KindCheck, Partner: "bank",
		At: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC), Body: []byte(`{"check_id":"01a21d8c-093d-7457-b696-fd5f540357ab"}`)}
	if err := rec.Seal(); err != nil {
		t.Fatal(err)
	}
	p, err := signer.Promise(evidence.SpoolEntry{Position: 3, Replica: "replica-a", Record: rec}, rec.At)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{"check_id": rec.ID, "partner": "bank", "outcome": "clear",
		"subject": map[string]any{"id": "91350100M000100Y43", "kind": "organization"},
		"action":  "bank_credit", "measures": []any{}, "entries": []any{}, "catalog_revision": "cat-bcb591f317d49f73",
		"data_as_of": rec.At, "checked_at": rec.At,
		"receipt": map[string]any{"state": "spooled", "record_hash": p.RecordHash, "promise": p}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
