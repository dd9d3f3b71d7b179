package gateway

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/credgate/credgate/service"
)

// Headers of idempotent checks (IETF draft-ietf-httpapi-idempotency-key-header).
const (
	idempotencyKeyHeader     = "Idempotency-Key"
	idempotentReplayedHeader = "Idempotent-Replayed"
)

// idempotencyKey is the request's Idempotency-Key: a Structured Field
// String as the draft writes it ("…", RFC 8941 §3.3.3), or the bare key
// most clients send; both name the same key. keyed is false without the
// header. A header given twice, empty, or not a key (1–255 printable
// ASCII) is service.ErrInvalidIdempotencyKey.
func idempotencyKey(h http.Header) (key string, keyed bool, err error) {
	vs := h.Values(idempotencyKeyHeader)
	if len(vs) == 0 {
		return "", false, nil
	}
	if len(vs) > 1 {
		return "", true, fmt.Errorf("%w: %s given %d times", service.ErrInvalidIdempotencyKey, idempotencyKeyHeader, len(vs))
	}
	v := strings.Trim(vs[0], " \t")
	if len(v) >= 2 && v[0] == '"' {
		if v, err = sfString(v); err != nil {
			return "", true, err
		}
	}
	if err := service.ValidIdempotencyKey(v); err != nil {
		return "", true, err
	}
	return v, true, nil
}

// sfString unquotes an RFC 8941 String: printable ASCII between quotes,
// with \" and \\ its only escapes.
func sfString(v string) (string, error) {
	if v[len(v)-1] != '"' {
		return "", fmt.Errorf("%w: an unterminated quoted string", service.ErrInvalidIdempotencyKey)
	}
	var b strings.Builder
	for i := 1; i < len(v)-1; i++ {
		c := v[i]
		switch {
		case c == '\\':
			i++
			if i == len(v)-1 || (v[i] != '"' && v[i] != '\\') {
				return "", fmt.Errorf("%w: a bad escape in the quoted string", service.ErrInvalidIdempotencyKey)
			}
			c = v[i]
		case c == '"':
			return "", fmt.Errorf("%w: a quote inside the quoted string", service.ErrInvalidIdempotencyKey)
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}
