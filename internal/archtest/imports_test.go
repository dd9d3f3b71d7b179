// Package archtest holds the tests that keep credgate's shape: dependencies
// point inward, toward policy, and each layer imports only what its job
// needs (docs/ARCHITECTURE.md).
package archtest

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/credgate/credgate"

// deps lists every package pkg depends on, directly or not (go list -deps),
// test files excluded: what a binary built from it links.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-json=ImportPath,Standard", module+"/"+pkg).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var list []string
	for dec.More() {
		var p struct {
			ImportPath string
			Standard   bool
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if !p.Standard && p.ImportPath != module+"/"+pkg {
			list = append(list, p.ImportPath)
		}
	}
	return list
}

func hasPrefix(p string, prefixes []string) bool {
	return slices.ContainsFunc(prefixes, func(pre string) bool { return p == pre || strings.HasPrefix(p, pre+"/") })
}

// traceAPI is the OpenTelemetry trace API (interfaces and a no-op, no
// I/O) with credgate's span names: the appender names its batch on the
// caller's span. The SDK and exporters stay out (TestNoTracingSDK).
var traceAPI = []string{
	module + "/internal/telemetry/spans",
	"go.opentelemetry.io/otel/attribute", "go.opentelemetry.io/otel/codes", "go.opentelemetry.io/otel/semconv",
	"go.opentelemetry.io/otel/trace", "github.com/cespare/xxhash/v2",
}

// TestInnerLayersAllowList: policy is the pure domain and evidence the
// verifiable log; neither may reach infrastructure (HTTP frameworks,
// databases, caches) nor any other credgate package but those listed.
func TestInnerLayersAllowList(t *testing.T) {
	for pkg, allowed := range map[string][]string{
		"policy":   {"github.com/goccy/go-yaml"},
		"evidence": append([]string{"github.com/transparency-dev/merkle", "golang.org/x/mod/sumdb/note", module + "/internal/durable"}, traceAPI...),
	} {
		for _, d := range deps(t, pkg) {
			if !hasPrefix(d, allowed) {
				t.Errorf("%s depends on %s; it may depend only on the standard library and %v", pkg, d, allowed)
			}
		}
	}
}

// storage is what "knows the database": drivers, SQL, credgate's adapters.
var storage = []string{
	module + "/adapters",
	"github.com/jackc/pgx",
	"modernc.org/sqlite",
	"github.com/pressly/goose",
}

// TestNoStorageOutsideAdapters: the HTTP layer, the use cases, access and
// the cache reach storage only through the interfaces service declares.
func TestNoStorageOutsideAdapters(t *testing.T) {
	for _, pkg := range []string{"gateway", "console", "service", "access", "cache", "policy", "evidence"} {
		for _, d := range deps(t, pkg) {
			if hasPrefix(d, storage) {
				t.Errorf("%s depends on %s: storage belongs behind service's interfaces, in adapters/", pkg, d)
			}
		}
	}
}

// TestInwardOnly: no inner package imports an outer one (service never
// imports gateway, cache or cmd; access imports no other credgate package),
// and the pure layers do no network, SQL or process I/O of the standard
// library either.
func TestInwardOnly(t *testing.T) {
	for pkg, forbidden := range map[string][]string{
		"service": {module + "/gateway", module + "/console", module + "/cache", module + "/cmd", module + "/adapters", "github.com/gin-gonic/gin", "net/http"},
		// The console is an interface beside gateway: it reaches data only
		// through service (gateway only for the problem mapping), never
		// the cache tier or the binary's wiring.
		"console":  {module + "/cache", module + "/cmd", module + "/adapters", module + "/internal/config"},
		"gateway":  {module + "/console"},
		"access":   {module + "/service", module + "/gateway", module + "/policy", module + "/evidence", "github.com/gin-gonic/gin"},
		"cache":    {module + "/gateway", module + "/cmd", "github.com/gin-gonic/gin"},
		"policy":   {module, "net", "database/sql", "os/exec"},
		"evidence": {module + "/service", module + "/gateway", module + "/adapters", module + "/cache", "net", "database/sql", "os/exec"},
	} {
		out, err := exec.Command("go", "list", "-deps", module+"/"+pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		for _, d := range strings.Fields(string(out)) {
			if d != module+"/"+pkg && hasPrefix(d, forbidden) {
				t.Errorf("%s depends on %s", pkg, d)
			}
		}
	}
}

// TestNoTracingSDK: only the binary sets tracing up; the libraries see the
// trace API alone, so that a partner system using them pulls in no
// exporter, gRPC or SDK.
func TestNoTracingSDK(t *testing.T) {
	sdk := []string{"go.opentelemetry.io/otel/sdk", "go.opentelemetry.io/otel/exporters", "google.golang.org/grpc", module + "/internal/telemetry"}
	for _, pkg := range []string{"policy", "evidence", "service", "access", "cache", "gateway", "console", "client"} {
		for _, d := range deps(t, pkg) {
			if hasPrefix(d, sdk) && d != module+"/internal/telemetry/spans" {
				t.Errorf("%s depends on %s: tracing is set up by cmd/credgate only", pkg, d)
			}
		}
	}
}
