// Package telemetry sets up credgate's OpenTelemetry tracing: the tracer
// provider the components record their spans with (passed to them through
// their WithTracerProvider options) and the OTLP exporter that sends them
// to a collector. Tracing is off by default; off, the provider is a no-op
// and the components skip their spans (package spans).
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Exporter names where spans go.
type Exporter string

// Exporters.
const (
	// ExporterNone: tracing off (the default).
	ExporterNone Exporter = "none"
	// ExporterOTLPHTTP: OTLP/HTTP protobuf, e.g. http://collector:4318.
	ExporterOTLPHTTP Exporter = "otlp-http"
	// ExporterOTLPGRPC: OTLP/gRPC, e.g. http://collector:4317.
	ExporterOTLPGRPC Exporter = "otlp-grpc"
)

// DefaultServiceName is the service.name of credgate's spans.
const DefaultServiceName = "credgate"

// ErrInvalidConfig wraps every refusal of a Config.
var ErrInvalidConfig = errors.New("invalid tracing configuration")

// Config is the tracing section of credgate's configuration. The zero
// value is tracing off.
type Config struct {
	// Exporter is none (or empty), otlp-http or otlp-grpc.
	Exporter Exporter
	// Endpoint is the collector's URL: http://host:4318 (otlp-http, to
	// which /v1/traces is added unless the URL has a path) or
	// http://host:4317 (otlp-grpc); http means no TLS. Empty: the OTLP
	// defaults (localhost, or OTEL_EXPORTER_OTLP_ENDPOINT).
	Endpoint string
	// SampleRatio is the share of requests traced, in [0, 1]. A caller's
	// traceparent joins its trace but does not force sampling: partners
	// cannot make credgate trace every request.
	SampleRatio float64
	// ServiceName is the spans' service.name (default credgate).
	ServiceName string
}

// DefaultConfig is tracing off, sampling every request once an exporter
// is chosen.
func DefaultConfig() Config {
	return Config{Exporter: ExporterNone, SampleRatio: 1, ServiceName: DefaultServiceName}
}

// Enabled reports whether spans are exported.
func (c Config) Enabled() bool { return c.Exporter != "" && c.Exporter != ExporterNone }

// Validate refuses an unknown exporter, an endpoint that is not an http or
// https URL with a host, and a ratio outside [0, 1], naming the value.
func (c Config) Validate() error {
	switch c.Exporter {
	case "", ExporterNone, ExporterOTLPHTTP, ExporterOTLPGRPC:
	default:
		return fmt.Errorf("%w: exporter %q: want none, otlp-http or otlp-grpc", ErrInvalidConfig, c.Exporter)
	}
	if c.SampleRatio < 0 || c.SampleRatio > 1 || c.SampleRatio != c.SampleRatio {
		return fmt.Errorf("%w: sample ratio %v: want a number from 0 to 1", ErrInvalidConfig, c.SampleRatio)
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w: endpoint %q: want a URL such as http://collector:4318", ErrInvalidConfig, c.Endpoint)
		}
		if u.User != nil {
			// Credentials in the URL would end up in logs and errors.
			return fmt.Errorf("%w: endpoint: credentials in the URL are not accepted", ErrInvalidConfig)
		}
	}
	return nil
}

// Option configures Setup.
type Option func(*setup)

type setup struct {
	exporter sdktrace.SpanExporter
}

// WithSpanExporter sends spans to exp instead of the configured OTLP
// exporter (tests: tracetest.NewInMemoryExporter). It turns tracing on.
func WithSpanExporter(exp sdktrace.SpanExporter) Option {
	return func(s *setup) { s.exporter = exp }
}

// Tracing is the tracer provider credgate's components record with, and
// its shutdown.
type Tracing struct {
	provider trace.TracerProvider
	sdk      *sdktrace.TracerProvider // nil when off
}

// TracerProvider is what the components' WithTracerProvider options take.
// Off, it is a no-op provider, which they recognise and skip their spans.
func (t *Tracing) TracerProvider() trace.TracerProvider { return t.provider }

// Shutdown exports the spans still buffered and stops the exporter; call
// it once on the way out, with a deadline.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	if err := t.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("shut down tracing: %w", err)
	}
	return nil
}

// Setup validates cfg and returns the tracer provider: a no-op one when
// tracing is off, else an SDK provider sampling cfg.SampleRatio of the
// requests and exporting in batches over OTLP. Creating the exporter does
// not connect: a collector that is down loses spans, never checks.
func Setup(ctx context.Context, cfg Config, opts ...Option) (*Tracing, error) {
	var s setup
	for _, o := range opts {
		o(&s)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Enabled() && s.exporter == nil {
		return &Tracing{provider: noop.NewTracerProvider()}, nil
	}
	exp := s.exporter
	if exp == nil {
		var err error
		if exp, err = newExporter(ctx, cfg); err != nil {
			return nil, err
		}
	}
	name := cfg.ServiceName
	if name == "" {
		name = DefaultServiceName
	}
	ratio := sdktrace.TraceIDRatioBased(cfg.SampleRatio)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", name))),
		// A local parent's decision is kept (a request is traced whole); a
		// remote one is judged by the ratio again.
		sdktrace.WithSampler(sdktrace.ParentBased(ratio,
			sdktrace.WithRemoteParentSampled(ratio), sdktrace.WithRemoteParentNotSampled(ratio))),
	)
	return &Tracing{provider: tp, sdk: tp}, nil
}

func newExporter(ctx context.Context, cfg Config) (sdktrace.SpanExporter, error) {
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch cfg.Exporter {
	case ExporterOTLPHTTP:
		var o []otlptracehttp.Option
		if cfg.Endpoint != "" {
			o = append(o, otlptracehttp.WithEndpointURL(httpTracesURL(cfg.Endpoint)))
		}
		exp, err = otlptracehttp.New(ctx, o...)
	case ExporterOTLPGRPC:
		var o []otlptracegrpc.Option
		if cfg.Endpoint != "" {
			o = append(o, otlptracegrpc.WithEndpointURL(cfg.Endpoint))
		}
		exp, err = otlptracegrpc.New(ctx, o...)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing exporter %s: %w", cfg.Exporter, err)
	}
	return exp, nil
}

// httpTracesURL adds OTLP/HTTP's traces path to a collector's base URL, as
// OTEL_EXPORTER_OTLP_ENDPOINT does; a URL with a path is taken as it is.
func httpTracesURL(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Path != "" && u.Path != "/") {
		return endpoint
	}
	u.Path = "/v1/traces"
	return u.String()
}
