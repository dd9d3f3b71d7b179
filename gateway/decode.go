package gateway

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/credgate/credgate/internal/strictjson"
	"github.com/credgate/credgate/policy"
)

// decodeJSON reads exactly one JSON value into v, strictly: unknown
// fields (a misspelt field must not be silently ignored in an approval
// workflow), trailing data, invalid UTF-8, a string holding a control
// character other than tab, line feed and carriage return, a field name in
// another case and a key given twice are refused (internal/strictjson,
// which NDJSON import lines go through too).
func decodeJSON(r io.Reader, v any) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return decodeProblem(err)
	}
	return decodeRaw(raw, v)
}

// decodeRaw is decodeJSON of a body already read.
func decodeRaw(raw []byte, v any) error {
	if err := strictjson.Decode(raw, v); err != nil {
		return jsonProblem(err)
	}
	return nil
}

// jsonProblem is the problem of a strictjson refusal (of a body, or of a
// line of an import); nil for any other error.
func jsonProblem(err error) *Problem {
	var se *strictjson.Error
	if !errors.As(err, &se) {
		return nil
	}
	var p *Problem
	switch {
	case errors.Is(se.Err, strictjson.ErrDuplicateKey):
		p = problem(http.StatusBadRequest, "duplicate_field", "Duplicate field", se.Detail)
	case errors.Is(se.Err, strictjson.ErrInvalidUTF8):
		p = problem(http.StatusBadRequest, "invalid_utf8", "Invalid UTF-8", se.Detail)
	case errors.Is(se.Err, strictjson.ErrControlCharacter):
		// Refused before anything is written: PostgreSQL cannot store
		// U+0000 (SQLite can), so a body holding it would have succeeded
		// on one store and failed on the other, or later in the group
		// commit of other requests' records (strictjson.ControlCharacter).
		p = problem(http.StatusBadRequest, "control_character", "Control character", se.Detail)
	default:
		p = problem(http.StatusBadRequest, "invalid_json", "Malformed JSON", se.Detail)
	}
	p.Field = se.Field
	return p
}

// streamError is err from a handler that streamed the request body: a
// body past the size limit is decodeProblem's 413, anything else stays as
// it is for fail to map.
func streamError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return decodeProblem(err)
	}
	return err
}

// decodeProblem is the problem of a body that could not be read: past
// the size limit (413), or cut off.
func decodeProblem(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return problem(http.StatusRequestEntityTooLarge, "body_too_large", "Request body too large",
			fmt.Sprintf("the body is larger than %d bytes", tooLarge.Limit))
	}
	return problem(http.StatusBadRequest, "invalid_json", "Malformed JSON", err.Error())
}

// checkRequest is the body of POST /v1/checks.
type checkRequest struct {
	Subject struct {
		ID string `json:"id"`
	} `json:"subject"`
	Action    string `json:"action"`
	Reference string `json:"reference"`
	// AsOf re-runs the check as of a past time (admins and auditors).
	AsOf *time.Time `json:"as_of"`
	// ValidAt asks about the standing at a past time.
	ValidAt *time.Time `json:"valid_at"`
	// Context narrows the region and states the business's industry,
	// subject type and employer type.
	Context *checkContext `json:"context"`
}

// checkContext is the context object of checks and batches.
type checkContext struct {
	Region       string `json:"region"`
	Industry     string `json:"industry"`
	SubjectType  string `json:"subject_type"`
	EmployerType string `json:"employer_type"`
}

func (x *checkContext) policy() policy.CheckContext {
	if x == nil {
		return policy.CheckContext{}
	}
	return policy.CheckContext{Region: x.Region, Industry: x.Industry, SubjectType: x.SubjectType, EmployerType: x.EmployerType}
}

// decodeCheckRequest decodes and checks the shape of a check request; the
// service validates the values.
func decodeCheckRequest(r io.Reader) (checkRequest, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return checkRequest{}, decodeProblem(err)
	}
	return decodeCheckBody(raw)
}

// readBody appends what r holds to b, as io.ReadAll does into a fresh
// slice; the check handler reads into a buffer it reuses.
func readBody(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if errors.Is(err, io.EOF) {
				return b, nil
			}
			return b, err
		}
	}
}

// decodeCheckBody is decodeCheckRequest on a body already read. Nothing
// decoded refers to raw: every value is copied out of it.
func decodeCheckBody(raw []byte) (checkRequest, error) {
	req, ok := checkRequest{}, false
	if utf8.Valid(raw) {
		req, ok = fastCheckRequest(raw)
	}
	if !ok {
		req = checkRequest{} // what the fast path read is not kept
		if err := decodeRaw(raw, &req); err != nil {
			return checkRequest{}, err
		}
	}
	if req.Subject.ID == "" {
		p := problem(http.StatusBadRequest, "missing_field", "Missing field", "subject.id is required")
		p.Field = "subject.id"
		return checkRequest{}, p
	}
	if req.Action == "" {
		p := problem(http.StatusBadRequest, "missing_field", "Missing field", "action is required")
		p.Field = "action"
		return checkRequest{}, p
	}
	return req, nil
}

// batchRequest is the body of POST /v1/checks:batch.
type batchRequest struct {
	Subjects []struct {
		ID string `json:"id"`
	} `json:"subjects"`
	Action    string        `json:"action"`
	Reference string        `json:"reference"`
	ValidAt   *time.Time    `json:"valid_at"`
	Context   *checkContext `json:"context"`
}

// fastCheckRequest decodes a check request of the shape clients send —
// an object of "subject" (an object of "id"), "action" and "reference",
// each at most once, every value a string without escapes — in one pass
// over the body, without encoding/json's reflection or the strict pass.
// It reports false for anything else (another key, an escape, a null,
// a repeated key, a key in another case), and decodeJSON then decides as
// always: the fast path accepts nothing the general one refuses and
// decodes what it accepts to the same values (FuzzFastCheckRequest). The
// body is valid UTF-8 (checked before).
func fastCheckRequest(data []byte) (checkRequest, bool) {
	var req checkRequest
	p := fastJSON{data: data}
	if !p.byte('{') {
		return req, false
	}
	var seen [3]bool
	for first := true; ; first = false {
		if first && p.byte('}') {
			break
		}
		if !first && !p.byte(',') {
			if !p.byte('}') {
				return req, false
			}
			break
		}
		key, ok := p.str()
		if !ok || !p.byte(':') {
			return req, false
		}
		var field int
		switch string(key) {
		case "subject":
			field = 0
			if !p.byte('{') {
				return req, false
			}
			if k, ok := p.str(); !ok || string(k) != "id" || !p.byte(':') {
				return req, false
			}
			id, ok := p.str()
			if !ok || !p.byte('}') {
				return req, false
			}
			req.Subject.ID = string(id)
		case "action", "reference":
			v, ok := p.str()
			if !ok {
				return req, false
			}
			if key[0] == 'a' {
				field, req.Action = 1, string(v)
			} else {
				field, req.Reference = 2, string(v)
			}
		default:
			return req, false
		}
		if seen[field] {
			return req, false
		}
		seen[field] = true
	}
	p.ws()
	return req, p.pos == len(data)
}

// fastJSON reads the tokens fastCheckRequest accepts.
type fastJSON struct {
	data []byte
	pos  int
}

func (p *fastJSON) ws() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// byte skips white space and reads c, reporting whether it was there.
func (p *fastJSON) byte(c byte) bool {
	p.ws()
	if p.pos < len(p.data) && p.data[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

// str skips white space and reads a string with no escapes and no control
// characters (which JSON forbids unescaped): its bytes are its value.
func (p *fastJSON) str() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	start := p.pos
	for ; p.pos < len(p.data); p.pos++ {
		switch c := p.data[p.pos]; {
		case c == '"':
			p.pos++
			return p.data[start : p.pos-1], true
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}
