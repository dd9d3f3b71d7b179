package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"time"
	"unicode/utf8"

	"github.com/credgate/credgate/policy"
)

// decodeJSON reads exactly one JSON value into v, refusing unknown fields
// (a misspelt field must not be silently ignored in an approval workflow)
// and trailing data. It refuses too what encoding/json would accept in a
// way a proxy or auditor reading the same bytes might not: invalid UTF-8
// (which encoding/json replaces with U+FFFD, so the record would not hold
// what was sent), a field name in another case ("Action" for "action"),
// and a key given twice in one object (encoding/json keeps the last, a
// reader that keeps the first would see another request). See strict.go.
func decodeJSON(r io.Reader, v any) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return decodeProblem(err)
	}
	if !utf8.Valid(raw) {
		return invalidUTF8(raw)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeProblem(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return decodeProblem(err)
		}
		return problem(http.StatusBadRequest, "invalid_json", "Malformed JSON", "unexpected data after the JSON value")
	}
	// The value is well-formed JSON: the strict pass only looks at keys
	// and escapes.
	return checkStrict(raw, reflect.TypeOf(v))
}

func decodeProblem(err error) error {
	var tooLarge *http.MaxBytesError
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooLarge):
		return problem(http.StatusRequestEntityTooLarge, "body_too_large", "Request body too large",
			fmt.Sprintf("the body is larger than %d bytes", tooLarge.Limit))
	case errors.Is(err, io.EOF):
		return problem(http.StatusBadRequest, "invalid_json", "Malformed JSON", "the body is empty")
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return problem(http.StatusBadRequest, "invalid_json", "Malformed JSON", err.Error())
	case errors.As(err, &typeErr):
		p := problem(http.StatusBadRequest, "invalid_json", "Malformed JSON",
			fmt.Sprintf("field %q must be %s", typeErr.Field, typeErr.Type))
		p.Field = typeErr.Field
		return p
	}
	// Unknown fields and bad time formats come as plain errors.
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
	var req checkRequest
	if err := decodeJSON(r, &req); err != nil {
		return checkRequest{}, err
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
