// Package strictjson decodes one JSON value as every JSON input of
// credgate is read: a request body of the API (gateway) and a line of an
// NDJSON import file (service) alike, so that the same bytes are accepted
// or refused the same way whichever door they come in by. It refuses what
// encoding/json would accept in a way a proxy or auditor reading the same
// bytes might not: invalid UTF-8 (which encoding/json replaces with
// U+FFFD, so the record would not hold what was sent), a field name in
// another case ("Action" for "action"), a key given twice in one object
// (encoding/json keeps the last, a reader that keeps the first would see
// another request), unknown fields and trailing data. It also refuses a
// string holding a control character other than tab, line feed and
// carriage return (ErrControlCharacter; see ValidText).
//
// Its errors are *Error, wrapping one of the sentinels below; gateway maps
// them to problems (invalid_json, duplicate_field, invalid_utf8,
// control_character).
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/credgate/credgate/policy"
)

// Kinds of refusal: an *Error wraps one of them.
var (
	// ErrMalformed: not exactly one JSON value of the target's shape
	// (syntax, an empty input, trailing data, an unknown field or one in
	// another case, a wrong type).
	ErrMalformed = errors.New("malformed JSON")
	// ErrDuplicateKey: a key appears twice in one object.
	ErrDuplicateKey = errors.New("duplicate key")
	// ErrInvalidUTF8: the input is not UTF-8, or a \u escape is a lone
	// UTF-16 surrogate.
	ErrInvalidUTF8 = errors.New("invalid UTF-8")
	// ErrControlCharacter: a string holds a C0 control character other
	// than tab, line feed and carriage return (U+0000–U+001F but for
	// U+0009, U+000A, U+000D), which JSON can carry only escaped (\u0000,
	// \b, \f, …). See ValidText for why.
	ErrControlCharacter = errors.New("control character")
)

// Error is a refusal: its kind (one of the sentinels), where, and what.
// Neither it nor its detail repeats a value of the input, which may be
// part of an ID number; keys are repeated, bounded.
type Error struct {
	Err error
	// Field names where, as problems name fields (subjects[2].id); empty
	// when unknown.
	Field  string
	Detail string
}

func (e *Error) Error() string { return e.Detail }

// Unwrap lets errors.Is find the kind.
func (e *Error) Unwrap() error { return e.Err }

// Decode reads exactly one JSON value from data into v (a pointer),
// strictly (see the package comment).
func Decode(data []byte, v any) error {
	if err := ValidUTF8(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return decodeError(err)
		}
		return &Error{Err: ErrMalformed, Detail: "unexpected data after the JSON value"}
	}
	// The value is well-formed JSON: the strict pass only looks at keys
	// and escapes.
	return checkStrict(data, reflect.TypeOf(v))
}

// decodeError is the Error of what encoding/json refused.
func decodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return &Error{Err: ErrMalformed, Detail: "the body is empty"}
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return &Error{Err: ErrMalformed, Detail: "the body must be " + jsonKind(typeErr.Type)}
		}
		return &Error{Err: ErrMalformed, Field: typeErr.Field,
			Detail: fmt.Sprintf("field %q must be %s", typeErr.Field, jsonKind(typeErr.Type))}
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if f, uerr := strconv.Unquote(name); uerr == nil {
			return &Error{Err: ErrMalformed, Field: f, Detail: fmt.Sprintf("unknown field %q", f)}
		}
	}
	// Syntax errors and bad time formats: encoding/json's words.
	return &Error{Err: ErrMalformed, Detail: err.Error()}
}

// jsonKind names what JSON value a Go type is decoded from, for a caller
// who never sees the server's Go types.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "another kind of value"
}

// ValidUTF8 refuses data that is not UTF-8 (RFC 8259 §8.1), naming the
// offset of the first bad byte, never the bytes, which may be part of an
// ID number.
func ValidUTF8(data []byte) error {
	if utf8.Valid(data) {
		return nil
	}
	at := 0
	for at < len(data) {
		r, n := utf8.DecodeRune(data[at:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		at += n
	}
	return &Error{Err: ErrInvalidUTF8,
		Detail: fmt.Sprintf("not valid UTF-8 (at byte %d); send UTF-8, never another encoding", at)}
}

// ControlCharacter reports whether r is a control character text must not
// hold: U+0000–U+001F but for tab, line feed and carriage return. The rule,
// and why, is policy.ControlCharacter's, which policy applies to every free
// text whichever way it came.
func ControlCharacter(r rune) bool {
	return policy.ControlCharacter(r)
}

// ValidText refuses data that is not UTF-8 (ErrInvalidUTF8, as ValidUTF8)
// or holds a control character (ErrControlCharacter, ControlCharacter):
// what every text field of credgate may hold, whichever door it comes in
// by (a JSON string, a CSV field). The detail names the byte offset and
// the character's code point, never the text.
func ValidText(data []byte) error {
	if err := ValidUTF8(data); err != nil {
		return err
	}
	for at, c := range data {
		if c < 0x20 && ControlCharacter(rune(c)) {
			return &Error{Err: ErrControlCharacter, Detail: controlDetail("the byte", at, rune(c))}
		}
	}
	return nil
}

// controlDetail is the detail of an ErrControlCharacter refusal.
func controlDetail(what string, at int, r rune) string {
	return fmt.Sprintf("%s at byte %d is the control character U+%04X; text may hold tab, line feed and carriage return, no other control character", what, at, r)
}
