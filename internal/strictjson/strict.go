package strictjson

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The strict pass of Decode. encoding/json has already accepted the body
// as one well-formed value of the target's shape; this walks the same
// bytes once more and refuses what it let through:
//
//   - a key that names a field only when compared without case
//     ("Action" for "action"): encoding/json folds case, an auditor or a
//     proxy filtering on "action" does not;
//   - a key repeated in one object: encoding/json keeps the last, others
//     keep the first or refuse;
//   - a \u escape that is a lone UTF-16 surrogate: encoding/json turns it
//     into U+FFFD, so the evidence would not hold what was sent.
////   - an escaped control character other than tab, line feed and carriage
//     return (\u0000, \b, \f, \u001b, …: ControlCharacter); JSON has no
//     other way to carry one in a string.
//
// It allocates only for keys written with escapes, for objects of more
// than strictLinearKeys keys, and for reflect.Type.Field's index: 4
// allocations for a check request (decodeCheckRequest as a whole went from
// 16 to 22, reading the body whole and the strict pass).

// strictLinearKeys is how many keys of one object are compared pairwise
// for duplicates; past it a set is built, so that a large map cannot make
// the check quadratic.
const strictLinearKeys = 32

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// strictWalker walks a well-formed JSON value.
type strictWalker struct {
	data []byte
	pos  int
	// keys holds the keys of the objects being walked, innermost last.
	keys [][]byte
	// fields holds the names and types of the structs being walked.
	names []string
	types []reflect.Type
	// path is where the walker is, for the problem's field.
	path []pathStep
}

type pathStep struct {
	key   []byte // nil in an array
	index int
}

// checkStrict walks data, decoded into a value of type t (a pointer).
func checkStrict(data []byte, t reflect.Type) error {
	var keys [16][]byte
	var path [8]pathStep
	var names [16]string
	var types [16]reflect.Type
	w := strictWalker{data: data, keys: keys[:0], path: path[:0], names: names[:0], types: types[:0]}
	if t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return w.value(t)
}

func (w *strictWalker) ws() {
	for w.pos < len(w.data) {
		switch w.data[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
		default:
			return
		}
	}
}

// shape is the type whose keys a JSON value is matched against: pointers
// followed, nil for a value that decodes itself or into an interface
// (nothing to match, though duplicates and escapes are still refused).
func shape(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() == reflect.Interface {
		return nil
	}
	if p := reflect.PointerTo(t); p.Implements(jsonUnmarshaler) || p.Implements(textUnmarshaler) {
		return nil
	}
	return t
}

func (w *strictWalker) value(t reflect.Type) error {
	w.ws()
	if w.pos >= len(w.data) {
		return nil
	}
	switch w.data[w.pos] {
	case '{':
		return w.object(shape(t))
	case '[':
		return w.array(shape(t))
	case '"':
		_, err := w.str()
		return err
	}
	for w.pos < len(w.data) {
		switch w.data[w.pos] {
		case ',', ']', '}', ' ', '\t', '\n', '\r':
			return nil
		}
		w.pos++
	}
	return nil
}

func (w *strictWalker) array(t reflect.Type) error {
	var elem reflect.Type
	if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		elem = t.Elem()
	}
	w.pos++ // [
	w.ws()
	if w.pos < len(w.data) && w.data[w.pos] == ']' {
		w.pos++
		return nil
	}
	for i := 0; w.pos < len(w.data); i++ {
		w.path = append(w.path, pathStep{index: i})
		if err := w.value(elem); err != nil {
			return err
		}
		if !w.endElement() {
			break
		}
	}
	return nil
}

// endElement ends an array element or object member: it drops the
// element's path step and consumes the separator after it, and reports
// whether another element follows.
func (w *strictWalker) endElement() bool {
	w.path = w.path[:len(w.path)-1]
	w.ws()
	if w.pos >= len(w.data) {
		return false
	}
	c := w.data[w.pos]
	w.pos++
	return c == ','
}

func (w *strictWalker) object(t reflect.Type) error {
	base, fbase := len(w.keys), len(w.names)
	if t != nil && t.Kind() == reflect.Struct {
		w.structFields(t)
	}
	var seen map[string]struct{}
	w.pos++ // {
	w.ws()
	if w.pos < len(w.data) && w.data[w.pos] == '}' {
		w.pos++
		w.keys, w.names, w.types = w.keys[:base], w.names[:fbase], w.types[:fbase]
		return nil
	}
	for w.pos < len(w.data) {
		w.ws()
		key, err := w.str()
		if err != nil {
			return err
		}
		w.path = append(w.path, pathStep{key: key})
		if seen == nil && len(w.keys)-base < strictLinearKeys {
			for _, k := range w.keys[base:] {
				if bytes.Equal(k, key) {
					return w.duplicate(key)
				}
			}
			w.keys = append(w.keys, key)
		} else {
			if seen == nil {
				seen = make(map[string]struct{}, 2*strictLinearKeys)
				for _, k := range w.keys[base:] {
					seen[string(k)] = struct{}{}
				}
			}
			if _, dup := seen[string(key)]; dup {
				return w.duplicate(key)
			}
			seen[string(key)] = struct{}{}
		}
		child, err := w.child(t, fbase, key)
		if err != nil {
			return err
		}
		w.ws()
		w.pos++ // :
		if err := w.value(child); err != nil {
			return err
		}
		if !w.endElement() {
			break
		}
	}
	w.keys, w.names, w.types = w.keys[:base], w.names[:fbase], w.types[:fbase]
	return nil
}

// structFields pushes the JSON names and types of t's fields, as
// encoding/json names them (embedded structs are not used in request
// bodies and are not flattened here).
func (w *strictWalker) structFields(t reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Name
		if tag, ok := f.Tag.Lookup("json"); ok {
			n, _, _ := strings.Cut(tag, ",")
			if tag == "-" {
				continue
			}
			if n != "" {
				name = n
			}
		}
		w.names = append(w.names, name)
		w.types = append(w.types, f.Type)
	}
}

// child returns the type a key's value decodes into, and refuses a key
// that names a field only without regard to case.
func (w *strictWalker) child(t reflect.Type, fbase int, key []byte) (reflect.Type, error) {
	if t == nil {
		return nil, nil
	}
	switch t.Kind() {
	case reflect.Map:
		return t.Elem(), nil
	case reflect.Struct:
	default:
		return nil, nil
	}
	names := w.names[fbase:]
	for i, n := range names {
		if string(key) == n {
			return w.types[fbase+i], nil
		}
	}
	for _, n := range names {
		if strings.EqualFold(string(key), n) {
			return nil, &Error{Err: ErrMalformed, Field: w.field(),
				Detail: fmt.Sprintf("unknown field %s: field names are case-sensitive (%q)", quoteKey(key), n)}
		}
	}
	// encoding/json refused unknown keys already; one it folded in
	// another way (Unicode case folding) is refused here.
	return nil, &Error{Err: ErrMalformed, Field: w.field(), Detail: "unknown field " + quoteKey(key)}
}

func (w *strictWalker) duplicate(key []byte) error {
	return &Error{Err: ErrDuplicateKey, Field: w.field(),
		Detail: fmt.Sprintf("field %s appears more than once in one object", quoteKey(key))}
}

// str reads a string at w.pos and returns its value: a slice of the body
// when it has no escapes. It refuses an escaped lone surrogate.
func (w *strictWalker) str() ([]byte, error) {
	if w.pos >= len(w.data) || w.data[w.pos] != '"' {
		return nil, nil
	}
	w.pos++
	start := w.pos
	for w.pos < len(w.data) {
		switch w.data[w.pos] {
		case '"':
			s := w.data[start:w.pos]
			w.pos++
			return s, nil
		case '\\':
			return w.escaped(start)
		}
		w.pos++
	}
	return w.data[start:], nil
}

// escaped finishes a string that has escapes, from its first backslash.
func (w *strictWalker) escaped(start int) ([]byte, error) {
	out := append([]byte(nil), w.data[start:w.pos]...)
	for w.pos < len(w.data) {
		c := w.data[w.pos]
		switch {
		case c == '"':
			w.pos++
			return out, nil
		case c != '\\':
			out = append(out, c)
			w.pos++
			continue
		}
		if w.pos+1 >= len(w.data) {
			break
		}
		e := w.data[w.pos+1]
		w.pos += 2
		switch e {
		case 'b':
			return nil, w.control(w.pos-2, '\b')
		case 'f':
			return nil, w.control(w.pos-2, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			at := w.pos - 2
			r1, ok := w.hex4()
			if !ok {
				return out, nil
			}
			if ControlCharacter(r1) {
				return nil, w.control(at, r1)
			}
			if !utf16.IsSurrogate(r1) {
				out = utf8.AppendRune(out, r1)
				continue
			}
			if r1 < 0xDC00 && w.pos+1 < len(w.data) && w.data[w.pos] == '\\' && w.data[w.pos+1] == 'u' {
				save := w.pos
				w.pos += 2
				if r2, ok := w.hex4(); ok {
					if r := utf16.DecodeRune(r1, r2); r != utf8.RuneError {
						out = utf8.AppendRune(out, r)
						continue
					}
				}
				w.pos = save
			}
			return nil, &Error{Err: ErrInvalidUTF8, Field: w.field(),
				Detail: fmt.Sprintf("the \\u escape at byte %d is a lone UTF-16 surrogate, not a character", at)}
		default: // " \ /
			out = append(out, e)
		}
	}
	return out, nil
}

// control is the refusal of the escape at byte at, of control character r.
func (w *strictWalker) control(at int, r rune) error {
	return &Error{Err: ErrControlCharacter, Field: w.field(), Detail: controlDetail("the escape", at, r)}
}

func (w *strictWalker) hex4() (rune, bool) {
	if w.pos+4 > len(w.data) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(w.data[w.pos:w.pos+4]), 16, 16)
	if err != nil {
		return 0, false
	}
	w.pos += 4
	return rune(n), true
}

// field names where the walker is, as problems name fields:
// subjects[2].id.
func (w *strictWalker) field() string {
	var b strings.Builder
	for i, s := range w.path {
		if s.key == nil {
			b.WriteString("[" + strconv.Itoa(s.index) + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.Write(truncKey(s.key))
	}
	return b.String()
}

// truncKey bounds what of a caller's key a problem repeats.
func truncKey(k []byte) []byte {
	const maxKey = 64
	if len(k) > maxKey {
		k = k[:maxKey]
		for len(k) > 0 && !utf8.Valid(k) {
			k = k[:len(k)-1]
		}
	}
	return k
}

func quoteKey(k []byte) string { return strconv.Quote(string(truncKey(k))) }
