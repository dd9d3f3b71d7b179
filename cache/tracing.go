package cache

import (
	"context"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/credgate/credgate/internal/telemetry/spans"
)

// WithTracerProvider records each lookup as a span saying which tier
// answered (local, Redis or the store) and whether the local tier had the
// subject, with children for the Redis read and the store read. The
// subject is never recorded. Without it, or with a no-op provider, no span
// is made and a local hit still allocates nothing.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tracer = spans.Tracer(tp, spans.ScopeCache) }
}

// answeredBy records on a lookup's span the tier that answered it.
func answeredBy(span trace.Span, tier string, localHit bool) {
	if span.IsRecording() {
		span.SetAttributes(spans.CacheTier.String(tier), spans.CacheHit.Bool(localHit))
	}
}

// endSpan records a failure (not its text, which may name the subject)
// and ends span.
func endSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.SetStatus(codes.Error, "failed")
	}
	span.End()
}

// tracedRedisGet is redis.get in a span saying whether Redis had the
// subject.
func (t *Tier) tracedRedisGet(ctx context.Context, subject string) (*set, *fillTicket) {
	ctx, span := spans.Start(ctx, t.cfg.tracer, spans.CacheRedis)
	defer span.End()
	s, ticket := t.redis.get(ctx, subject)
	if span.IsRecording() {
		span.SetAttributes(spans.CacheHit.Bool(s != nil))
		if s == nil && ticket == nil {
			span.SetStatus(codes.Error, "redis unavailable")
		}
	}
	return s, ticket
}
