// Package spans is what credgate's components share to trace the check
// path: the attribute keys an operator searches by, and a span start that
// costs nothing when tracing is off. It depends on the OpenTelemetry API
// only; the SDK and the exporters are wired in by package telemetry, which
// only the binary imports.
//
// No span attribute may hold a personal ID number, a subject's code, a
// secret, a token or a caller's free text: spans leave credgate for a
// collector that is not cleared for personal data. Attributes say what kind
// of subject was checked, for which action, with what outcome, and where
// the time went.
package spans

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Instrumentation scope names, one per component.
const (
	ScopeGateway  = "github.com/credgate/credgate/gateway"
	ScopeService  = "github.com/credgate/credgate/service"
	ScopeCache    = "github.com/credgate/credgate/cache"
	ScopeEvidence = "github.com/credgate/credgate/evidence"
)

// Span names of the check path.
const (
	Authenticate   = "credgate.authenticate"
	RateLimit      = "credgate.rate_limit"
	Check          = "credgate.check"
	CheckBatch     = "credgate.check_batch"
	Lookup         = "credgate.entries.lookup"
	CacheLookup    = "credgate.cache.lookup"
	CacheRedis     = "credgate.cache.redis"
	CacheStore     = "credgate.cache.store"
	Violations     = "credgate.violations.read"
	Decide         = "credgate.decide"
	EvidenceAppend = "credgate.evidence.append"
	Receipt        = "credgate.receipt"
)

// Attribute keys. None of them carries an identifier of a subject.
const (
	// Partner is the calling partner's client id (an account name, not a
	// secret).
	Partner = attribute.Key("credgate.partner")
	// Role is the caller's role (partner, admin, auditor).
	Role = attribute.Key("credgate.role")
	// Action is the business action checked.
	Action = attribute.Key("credgate.action")
	// SubjectKind is organization or person; never the subject itself.
	SubjectKind = attribute.Key("credgate.subject.kind")
	// Subjects is how many subjects a batch asks about.
	Subjects = attribute.Key("credgate.subjects")
	// Outcome is the check's outcome (clear, prohibit …).
	Outcome = attribute.Key("credgate.outcome")
	// Entries and Measures count what the decision found and listed.
	Entries  = attribute.Key("credgate.entries")
	Measures = attribute.Key("credgate.measures")
	// PastTime says the check asked about a past time (as_of or valid_at).
	PastTime = attribute.Key("credgate.past_time")
	// CacheTier is where a lookup was answered: local, redis or store.
	CacheTier = attribute.Key("credgate.cache.tier")
	// CacheHit says whether the tier looked at had the subject.
	CacheHit = attribute.Key("credgate.cache.hit")
	// Records is how many evidence records a request appends.
	Records = attribute.Key("credgate.evidence.records")
	// BatchSize is how many records went in the group commit that held
	// the request's records (evidence.Appender).
	BatchSize = attribute.Key("credgate.evidence.batch_size")
	// CommitSeconds is how long that commit took.
	CommitSeconds = attribute.Key("credgate.evidence.commit_seconds")
	// LogIndex is the evidence log index of the receipt.
	LogIndex = attribute.Key("credgate.evidence.log_index")
	// RequestID is the request's X-Request-Id, to find its log lines.
	RequestID = attribute.Key("credgate.request_id")
)

// Tier values of CacheTier.
const (
	TierLocal = "local"
	TierRedis = "redis"
	TierStore = "store"
	// TierListed: the listed filter knew that no entry names the subject.
	TierListed = "listed"
)

// Tracer returns the tracer of tp for a component, or nil when tp is nil
// or a no-op provider: a component holding a nil tracer skips its spans
// altogether, so that tracing off costs a nil test per span.
func Tracer(tp trace.TracerProvider, scope string) trace.Tracer {
	switch tp.(type) {
	case nil, noop.TracerProvider, *noop.TracerProvider:
		return nil
	}
	return tp.Tracer(scope)
}

// Start starts a span named name as a child of ctx's span. With a nil
// tracer it returns ctx unchanged and a no-op span, allocating nothing.
// Callers set attributes afterwards and only when the span is recording
// (Span.IsRecording), so that building them costs nothing when off.
func Start(ctx context.Context, t trace.Tracer, name string) (context.Context, trace.Span) {
	if t == nil {
		return ctx, trace.SpanFromContext(context.Background())
	}
	return t.Start(ctx, name)
}
