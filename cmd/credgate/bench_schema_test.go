package main

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// benchSchemaFile documents the report bench --json prints, for the
// scripts and people who read it (docs/perf/bench/summ.py among them).
const benchSchemaFile = "../../docs/perf/bench/report.schema.json"

// checkBenchReportSchema fails t unless line, a report bench --json
// printed, is valid against benchSchemaFile.
func checkBenchReportSchema(t *testing.T, line []byte) {
	t.Helper()
	f, err := os.Open(benchSchemaFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("%s: %v", benchSchemaFile, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(benchSchemaFile, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(benchSchemaFile)
	if err != nil {
		t.Fatalf("%s: %v", benchSchemaFile, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(line))
	if err != nil {
		t.Fatalf("report is not JSON: %v", err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("bench's report does not match %s: %v\n%s", benchSchemaFile, err, line)
	}
}

// TestBenchReportSchemaNamesEveryField: the schema names exactly the
// report's fields, and requires exactly those the report always carries
// (no omitempty), so that a field added to the Go types without its
// documentation fails here rather than in a reader's script.
func TestBenchReportSchemaNamesEveryField(t *testing.T) {
	raw, err := os.ReadFile(benchSchemaFile)
	if err != nil {
		t.Fatal(err)
	}
	type object struct {
		Properties           map[string]json.RawMessage `json:"properties"`
		Required             []string                   `json:"required"`
		AdditionalProperties json.RawMessage            `json:"additionalProperties"`
	}
	var schema struct {
		object
		Defs map[string]object `json:"$defs"`
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		where string
		obj   object
		typ   reflect.Type
	}{
		{"the report", schema.object, reflect.TypeFor[benchReport]()},
		{"$defs/phase", schema.Defs["phase"], reflect.TypeFor[phaseResult]()},
		{"$defs/server", schema.Defs["server"], reflect.TypeFor[serverAccount]()},
		{"$defs/evidence", schema.Defs["evidence"], reflect.TypeFor[evidenceAccount]()},
	} {
		if string(tc.obj.AdditionalProperties) != "false" {
			t.Errorf("%s: additionalProperties should be false, so that an undocumented field fails validation", tc.where)
		}
		var names, required []string
		for f := range tc.typ.Fields() {
			tag := f.Tag.Get("json")
			if !f.IsExported() || tag == "" || tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			names = append(names, name)
			if opts != "omitempty" {
				required = append(required, name)
			}
		}
		for _, n := range names {
			if _, ok := tc.obj.Properties[n]; !ok {
				t.Errorf("%s: %s's field %q is not in the schema", tc.where, tc.typ.Name(), n)
			}
		}
		for n := range tc.obj.Properties {
			if !slices.Contains(names, n) {
				t.Errorf("%s: the schema's %q is not a field of %s", tc.where, n, tc.typ.Name())
			}
		}
		slices.Sort(required)
		got := slices.Sorted(slices.Values(tc.obj.Required))
		if !slices.Equal(got, required) {
			t.Errorf("%s: required %v, want the fields without omitempty %v", tc.where, got, required)
		}
	}
}
