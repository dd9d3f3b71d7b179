package gateway

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/credgate/credgate/internal/telemetry/spans"
)

// tracing is the server's tracer: nil (off) unless WithTracerProvider.
type tracing struct {
	tracer trace.Tracer
}

// WithTracerProvider records a span for every request (its route, never
// its path or query, which may name a subject), with children for
// authentication and the rate limit; the service's spans nest below. A
// caller's W3C traceparent joins its trace. Without it, or with a no-op
// provider, no span is made.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(s *Server) { s.tracing.tracer = spans.Tracer(tp, spans.ScopeGateway) }
}

// traceRequest is the request's span. Its name and attributes use the
// route template: /v1/admin/entries/:id, not the id.
func (s *Server) traceRequest(c *gin.Context) {
	t := s.tracing.tracer
	if t == nil {
		c.Next()
		return
	}
	route := c.FullPath()
	name := c.Request.Method + " " + route
	if route == "" {
		name = c.Request.Method + " unmatched"
	}
	ctx := propagation.TraceContext{}.Extract(c.Request.Context(), propagation.HeaderCarrier(c.Request.Header))
	ctx, span := t.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer))
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(semconv.HTTPRequestMethodKey.String(c.Request.Method), spans.RequestID.String(c.GetString(ctxRequestID)))
		if route != "" {
			span.SetAttributes(semconv.HTTPRoute(route))
		}
	}
	c.Request = c.Request.WithContext(ctx)
	c.Next()
	if !span.IsRecording() {
		return
	}
	status := c.Writer.Status()
	span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	caller := callerOf(c)
	if caller.ClientID != "" {
		span.SetAttributes(spans.Partner.String(caller.ClientID), spans.Role.String(string(caller.Role)))
	}
	if status >= http.StatusInternalServerError {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
}

// authChain is authentication then the rate limit, each in a span of its
// own when tracing is on.
func (s *Server) authChain() []gin.HandlerFunc {
	if s.tracing.tracer == nil {
		return []gin.HandlerFunc{s.authenticate, s.rateLimit}
	}
	return append(s.traced(spans.Authenticate, s.authenticate), s.traced(spans.RateLimit, s.rateLimit)...)
}

// traced puts a middleware that ends by passing the request on (c.Next)
// in a span covering only its own work: the span starts before it and ends
// in a handler placed right after it, or when it answers by itself (a
// refusal). The span is not put in the request's context, so that what
// follows is not recorded as its child.
func (s *Server) traced(name string, h gin.HandlerFunc) []gin.HandlerFunc {
	key := "credgate.span." + name
	start := func(c *gin.Context) {
		_, span := s.tracing.tracer.Start(c.Request.Context(), name)
		c.Set(key, span)
		c.Next()
		if span.IsRecording() { // still open: h answered without passing on
			span.SetAttributes(attribute.Bool("credgate.refused", c.IsAborted()))
			span.End()
		}
	}
	end := func(c *gin.Context) {
		if v, ok := c.Get(key); ok {
			v.(trace.Span).End()
		}
		c.Next()
	}
	return []gin.HandlerFunc{start, h, end}
}
