package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

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

// keyedBatchResult is a batchResult whose check is written as recorded.
type keyedBatchResult struct {
	Index   int             `json:"index"`
	Check   json.RawMessage `json:"check,omitempty"`
	Problem *Problem        `json:"problem,omitempty"`
}

// keyedBatchAnswer writes the answer of a batch sent with an
// Idempotency-Key: each check as its evidence record's body with its
// receipt (CheckAnswer.AppendJSON), as a check alone is written, so that
// the batch's replay, decoded from those bodies, is its first answer byte
// for byte; the problems are the request's, the same each time.
func (s *Server) keyedBatchAnswer(c *gin.Context, action string, results []batchResult, replayed bool) {
	out := make([]keyedBatchResult, len(results))
	for i, r := range results {
		out[i] = keyedBatchResult{Index: r.Index, Problem: r.Problem}
		if r.Check != nil {
			b, err := r.Check.JSON()
			if err != nil {
				fail(c, err)
				return
			}
			out[i].Check = b
		}
	}
	b, err := json.Marshal(struct {
		Action  string             `json:"action"`
		Results []keyedBatchResult `json:"results"`
	}{action, out})
	if err != nil {
		fail(c, err)
		return
	}
	if replayed {
		c.Header(idempotentReplayedHeader, "true")
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", b)
}
