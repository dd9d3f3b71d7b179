package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/telemetry/spans"
	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// withTracing records the gateway's and the checker's spans in exp.
func withTracing(exp *tracetest.InMemoryExporter) (harnessOption, *sdktrace.TracerProvider) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	return func(hc *harnessConfig) {
		hc.gateway = append(hc.gateway, gateway.WithTracerProvider(tp))
		hc.checker = append(hc.checker, service.WithTracerProvider(tp))
	}, tp
}

func spanNamed(t *testing.T, got tracetest.SpanStubs, name string) tracetest.SpanStub {
	t.Helper()
	for _, s := range got {
		if s.Name == name {
			return s
		}
	}
	names := make([]string, len(got))
	for i, s := range got {
		names[i] = s.Name
	}
	t.Fatalf("no span %q among %v", name, names)
	return tracetest.SpanStub{}
}

func attr(s tracetest.SpanStub, k attribute.Key) (attribute.Value, bool) {
	for _, kv := range s.Attributes {
		if kv.Key == k {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// A check through the gateway is traced stage by stage, and no span holds
// a subject's code, an ID number, a token, a secret or the caller's
// reference.
func TestTracingCheckPath(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	opt, tp := withTracing(exp)
	defer func() { _ = tp.Shutdown(context.Background()) }()
	h := newHarness(t, opt)

	listed := testenv.USCC(t, "91110108MA01ABCD1")
	const person = "11010519491231002X"
	const reference = "采购-2026-机密-001"
	if res := h.doJSON(http.MethodPost, "/v1/admin/entries", h.adminTok, blackEntry(listed)); res.Status != http.StatusCreated {
		t.Fatalf("create entry: %d %s", res.Status, res.Body)
	}
	res := h.doJSON(http.MethodPost, "/v1/admin/partners", h.adminTok, map[string]any{"name": "某市公共资源交易中心", "actions": []string{"government_procurement"}})
	if res.Status != http.StatusCreated {
		t.Fatalf("create partner: %d %s", res.Status, res.Body)
	}
	clientID, secret := res.json(t)["client_id"].(string), res.json(t)["client_secret"].(string)
	tok := h.token(clientID, secret)
	exp.Reset()

	res = h.doJSON(http.MethodPost, "/v1/checks", tok, map[string]any{
		"subject": map[string]string{"id": listed}, "action": "government_procurement", "reference": reference,
	})
	if res.Status != http.StatusOK {
		t.Fatalf("check: %d %s", res.Status, res.Body)
	}
	got := exp.GetSpans()

	root := spanNamed(t, got, "POST /v1/checks")
	if root.SpanKind != trace.SpanKindServer || root.Parent.IsValid() {
		t.Fatalf("request span kind %v, parent %v", root.SpanKind, root.Parent)
	}
	if v, _ := attr(root, "http.response.status_code"); v.AsInt64() != 200 {
		t.Fatalf("request span status %v", v.String())
	}
	if v, _ := attr(root, spans.Partner); v.AsString() != clientID {
		t.Fatalf("request span partner %q, want %q", v.String(), clientID)
	}
	check := spanNamed(t, got, spans.Check)
	want := map[string]trace.SpanID{
		spans.Authenticate: root.SpanContext.SpanID(), spans.RateLimit: root.SpanContext.SpanID(),
		spans.Check: root.SpanContext.SpanID(), spans.Lookup: check.SpanContext.SpanID(),
		spans.Decide: check.SpanContext.SpanID(), spans.EvidenceAppend: check.SpanContext.SpanID(),
		spans.Receipt: check.SpanContext.SpanID(),
	}
	for name, parent := range want {
		s := spanNamed(t, got, name)
		if s.Parent.SpanID() != parent || s.SpanContext.TraceID() != root.SpanContext.TraceID() {
			t.Errorf("span %s: parent %v, want %v", name, s.Parent.SpanID(), parent)
		}
	}
	// The authentication span covers authentication only, not the check.
	if auth := spanNamed(t, got, spans.Authenticate); auth.EndTime.After(check.StartTime) {
		t.Errorf("authentication span ends at %v, after the check started at %v", auth.EndTime, check.StartTime)
	}
	decide := spanNamed(t, got, spans.Decide)
	for k, want := range map[attribute.Key]string{spans.SubjectKind: "organization", spans.Action: "government_procurement", spans.Outcome: ""} {
		v, ok := attr(decide, k)
		if !ok || (want != "" && v.AsString() != want) {
			t.Errorf("decision span %s = %q, want %q", k, v.String(), want)
		}
	}
	if v, _ := attr(decide, spans.Entries); v.AsInt64() != 1 {
		t.Errorf("decision span entries %v, want 1", v.String())
	}
	app := spanNamed(t, got, spans.EvidenceAppend)
	if v, ok := attr(app, spans.BatchSize); !ok || v.AsInt64() < 1 {
		t.Errorf("evidence span batch size %v (set %v)", v.String(), ok)
	}
	if _, ok := attr(app, spans.CommitSeconds); !ok {
		t.Error("evidence span has no commit time")
	}

	// A person, a batch and a refused token leave no personal data either.
	res = h.doJSON(http.MethodPost, "/v1/checks", h.adminTok, map[string]any{"subject": map[string]string{"id": person}, "action": "government_procurement"})
	if res.Status != http.StatusOK {
		t.Fatalf("person check: %d %s", res.Status, res.Body)
	}
	res = h.doJSON(http.MethodPost, "/v1/checks:batch", tok, map[string]any{"subjects": []map[string]string{{"id": listed}, {"id": strings.ToLower(listed)}}, "action": "government_procurement", "reference": reference})
	if res.Status != http.StatusOK {
		t.Fatalf("batch: %d %s", res.Status, res.Body)
	}
	res = h.doJSON(http.MethodGet, "/v1/admin/entries?subject_id="+listed, h.adminTok, nil)
	if res.Status != http.StatusOK {
		t.Fatalf("list entries: %d %s", res.Status, res.Body)
	}
	problemCode(t, h.doJSON(http.MethodPost, "/v1/checks", tok+"x", map[string]any{"subject": map[string]string{"id": person}, "action": "government_procurement"}),
		http.StatusUnauthorized, "invalid_token")
	got = append(got, exp.GetSpans()...)
	spanNamed(t, got, spans.CheckBatch)
	if v, _ := attr(spanNamed(t, got, "GET /v1/admin/entries"), "http.route"); v.AsString() != "/v1/admin/entries" {
		t.Errorf("route attribute %q", v.String())
	}
	refused := 0
	for _, s := range got {
		if s.Name == spans.Authenticate {
			if v, _ := attr(s, "credgate.refused"); v.AsBool() {
				refused++
			}
		}
	}
	if refused != 1 {
		t.Errorf("%d refused authentication spans, want 1", refused)
	}

	secrets := []string{listed, strings.ToLower(listed), person, tok, h.adminTok, secret, adminSecret, reference}
	for _, s := range got {
		fields := []string{s.Name, s.Status.Description}
		for _, kv := range s.Attributes {
			fields = append(fields, kv.Value.String())
		}
		for _, ev := range s.Events {
			fields = append(fields, ev.Name)
			for _, kv := range ev.Attributes {
				fields = append(fields, kv.Value.String())
			}
		}
		for _, f := range fields {
			for _, secret := range secrets {
				if strings.Contains(f, secret) {
					t.Errorf("span %s holds %q", s.Name, f)
				}
			}
		}
	}
}

// A caller's traceparent makes the request part of its trace.
func TestTracingJoinsCallerTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	opt, tp := withTracing(exp)
	defer func() { _ = tp.Shutdown(context.Background()) }()
	h := newHarness(t, opt)
	req := httptest.NewRequest(http.MethodGet, "/v1/catalog", nil)
	req.Header.Set("Authorization", "Bearer "+h.adminTok)
	req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("catalog: %d %s", rec.Code, rec.Body)
	}
	root := spanNamed(t, exp.GetSpans(), "GET /v1/catalog")
	if got := root.SpanContext.TraceID().String(); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("trace id %s, want the caller's", got)
	}
	if got := root.Parent.SpanID().String(); got != "00f067aa0ba902b7" || !root.Parent.IsRemote() {
		t.Fatalf("parent %s (remote %v), want the caller's span", got, root.Parent.IsRemote())
	}
}
