package service

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/credgate/credgate/internal/telemetry/spans"
	"github.com/credgate/credgate/policy"
)

// WithTracerProvider records the check's stages as spans: the entry
// lookup, the violation records read for eligibility, the decision, the
// evidence append (whose batch size the appender adds) and the receipt.
// Their attributes say the action, the kind of subject, the outcome and
// counts, never the subject, the reference or any personal data. Without
// it, or with a no-op provider, no span is made.
func WithTracerProvider(tp trace.TracerProvider) CheckerOption {
	return func(c *Checker) { c.tracer = spans.Tracer(tp, spans.ScopeService) }
}

// span starts a stage's span (a no-op when tracing is off).
func (c *Checker) span(ctx context.Context, name string) (context.Context, trace.Span) {
	return spans.Start(ctx, c.tracer, name)
}

// endSpan records err, if any, and ends span. The error's text is not
// recorded: it may quote the subject.
func endSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.SetStatus(codes.Error, "failed")
	}
	span.End()
}

// traceDecision adds what was decided to the decision's span.
func traceDecision(span trace.Span, kind policy.SubjectKind, action string, d policy.Decision) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(spans.SubjectKind.String(string(kind)), spans.Action.String(action),
		spans.Outcome.String(string(d.Outcome)), spans.Entries.Int(len(d.Findings)), spans.Measures.Int(len(d.Measures)))
}

// tracedLookup is lookupAt in a span of its own; a cache tier below adds
// where the entries were found.
func (c *Checker) tracedLookup(ctx context.Context, subject string, past *time.Time) (_ Lookup, err error) {
	ctx, span := c.span(ctx, spans.Lookup)
	defer func() { endSpan(span, err) }()
	l, err := c.lookupAt(ctx, subject, past)
	if err == nil && span.IsRecording() {
		span.SetAttributes(spans.Entries.Int(len(l.Entries)), spans.PastTime.Bool(past != nil))
	}
	return l, err
}
