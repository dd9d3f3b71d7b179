// Package upstream brings lists into credgate from outside: data feeds that
// originating departments drop into a directory or publish at a URL (CSV
// or NDJSON), and the APIs of upstream platforms (national and provincial
// credit-sharing platforms, court and tax systems) whose records are
// mapped onto entries by a configurable field mapping.
//
// A source delivers a whole snapshot of the lists it feeds; the Runner
// fetches it on a schedule, through a circuit breaker, with a timeout per
// attempt and a bounded number of retries, and applies it as a whole or
// not at all (service.Sources): a snapshot with one bad record is rejected,
// the previous one stays in force and the error is recorded. Answers that
// rest on a source are as old as its last good snapshot (data_as_of), and
// past the source's bound they are unverifiable, never clear.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/credgate/credgate/service"
)

// Source fetches the whole current snapshot of an upstream.
type Source interface {
	// Fetch returns every record the upstream holds now, mapped to entry
	// inputs. An error wrapping ErrTransient may succeed when retried.
	Fetch(ctx context.Context) ([]service.SourceItem, error)
}

// Errors of fetching.
var (
	// ErrTransient: the upstream was unreachable, too slow or failing
	// (network errors, timeouts, 408, 429, 5xx); a retry may succeed.
	ErrTransient = errors.New("upstream unavailable")
	// ErrMalformed: the payload is not what the source's format or
	// mapping describes. Retrying the same payload cannot help.
	ErrMalformed = errors.New("malformed upstream payload")
	// ErrUpstreamRefused: the upstream answered with a client error
	// (4xx other than 408 and 429): the configuration is wrong.
	ErrUpstreamRefused = errors.New("upstream refused the request")
	// ErrNoFeedFile: a feed directory holds no feed file.
	ErrNoFeedFile = errors.New("no feed file")
	// ErrPayloadTooLarge: a payload larger than the source allows.
	ErrPayloadTooLarge = errors.New("upstream payload too large")
)

// DefaultMaxBytes caps a payload (one page of an HTTP source).
const DefaultMaxBytes = 64 << 20

// redact renders u for errors and logs: scheme, host and path only, as
// query strings and user info may carry credentials.
func redact(u *url.URL) string {
	if u == nil {
		return ""
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// cleanErr drops the *url.Error wrapper of a net/http error, whose text
// repeats the full URL (query included).
func cleanErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// transient marks err as worth a retry.
func transient(format string, args ...any) error {
	return fmt.Errorf("%w: %w", ErrTransient, fmt.Errorf(format, args...))
}
