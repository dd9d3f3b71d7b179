package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// Mapping maps an upstream platform's JSON records onto entries. Paths are
// dot-separated object keys (a number indexes an array): "data.list",
// "entity.code".
//
//	{
//	  "records": "data.list",
//	  "next": "data.nextPage",
//	  "key": "caseNo",
//	  "fields": {"subject_id": "entityCode", "reason": "reason", "legal_basis": "basis",
//	             "decided_at": "regDate", "published_at": "pubDate", "evidence_refs": "docNo"},
//	  "constants": {"list": "court_dishonest_debtor", "originating_department": "最高人民法院"},
//	  "values": {"reason": {"1": "有履行能力而拒不履行生效法律文书确定义务"}},
//	  "persons": {"path": "legalPersons", "id": "idNo", "role": "role",
//	              "roles": {"法定代表人": "legal_representative"}}
//	}
type Mapping struct {
	// Records is the path of the array of records; empty when the body
	// is the array.
	Records string `json:"records"`
	// Next is the path of the next page's URL (absolute, or relative to
	// the page); absent, null or empty on the last page.
	Next string `json:"next,omitempty"`
	// Key is the path of the upstream's own record id, if it has one.
	Key string `json:"key,omitempty"`
	// Fields maps entry fields to record paths.
	Fields map[string]string `json:"fields"`
	// Constants gives entry fields a fixed value.
	Constants map[string]string `json:"constants,omitempty"`
	// Values translates upstream codes, per entry field; a value missing
	// from a field's table rejects the record.
	Values map[string]map[string]string `json:"values,omitempty"`
	// TimeFormat of decided_at and published_at: empty for RFC 3339 or
	// YYYY-MM-DD (China Standard Time), "unix" or "unix_ms" for epoch
	// numbers, or a Go layout (read in China Standard Time).
	TimeFormat string `json:"time_format,omitempty"`
	// Persons maps the responsible persons of an organisation's record.
	Persons *PersonMapping `json:"persons,omitempty"`
}

// PersonMapping maps an array of responsible persons in a record.
type PersonMapping struct {
	Path string `json:"path"`
	ID   string `json:"id"`
	// Role is the path of the person's role in the upstream's terms,
	// translated by Roles; or RoleConstant for every person.
	Role         string            `json:"role,omitempty"`
	Roles        map[string]string `json:"roles,omitempty"`
	RoleConstant string            `json:"role_constant,omitempty"`
}

// Entry fields a mapping can set.
const (
	fieldSubject      = "subject_id"
	fieldList         = "list"
	fieldDepartment   = "originating_department"
	fieldReason       = "reason"
	fieldLegalBasis   = "legal_basis"
	fieldDecidedAt    = "decided_at"
	fieldPublishedAt  = "published_at"
	fieldEvidenceRefs = "evidence_refs"
)

var (
	mappableFields = []string{fieldSubject, fieldList, fieldDepartment, fieldReason, fieldLegalBasis,
		fieldDecidedAt, fieldPublishedAt, fieldEvidenceRefs}
	requiredFields = []string{fieldSubject, fieldList, fieldDepartment, fieldReason, fieldLegalBasis,
		fieldDecidedAt, fieldPublishedAt}
)

// ErrInvalidMapping: a mapping that cannot map records.
var ErrInvalidMapping = errors.New("invalid field mapping")

// Validate checks that every required entry field has a path or a constant
// (not both), that only known fields are mapped, and that persons are
// mapped completely.
func (m *Mapping) Validate() error {
	for f := range m.Fields {
		if !slices.Contains(mappableFields, f) {
			return fmt.Errorf("%w: unknown field %q (known: %s)", ErrInvalidMapping, f, strings.Join(mappableFields, ", "))
		}
		if m.Fields[f] == "" {
			return fmt.Errorf("%w: field %q has an empty path", ErrInvalidMapping, f)
		}
	}
	for f := range m.Constants {
		if !slices.Contains(mappableFields, f) {
			return fmt.Errorf("%w: unknown constant %q", ErrInvalidMapping, f)
		}
		if _, both := m.Fields[f]; both {
			return fmt.Errorf("%w: %q has both a path and a constant", ErrInvalidMapping, f)
		}
	}
	for f := range m.Values {
		if _, ok := m.Fields[f]; !ok {
			return fmt.Errorf("%w: a value table for %q, which has no path", ErrInvalidMapping, f)
		}
	}
	for _, f := range requiredFields {
		_, p := m.Fields[f]
		_, c := m.Constants[f]
		if !p && !c {
			return fmt.Errorf("%w: %q needs a path or a constant", ErrInvalidMapping, f)
		}
	}
	switch m.TimeFormat {
	case "", "unix", "unix_ms":
	default:
		if !strings.ContainsAny(m.TimeFormat, "0123456789") {
			return fmt.Errorf("%w: time_format %q is not a Go layout", ErrInvalidMapping, m.TimeFormat)
		}
	}
	if p := m.Persons; p != nil {
		if p.Path == "" || p.ID == "" {
			return fmt.Errorf("%w: persons need a path and an id", ErrInvalidMapping)
		}
		if (p.Role == "") == (p.RoleConstant == "") {
			return fmt.Errorf("%w: persons need a role path or a role constant, not both", ErrInvalidMapping)
		}
		roles := []string{p.RoleConstant}
		for _, r := range p.Roles {
			roles = append(roles, r)
		}
		for _, r := range roles {
			if r != "" && !slices.Contains(policy.Roles(), policy.Role(r)) {
				return fmt.Errorf("%w: unknown role %q", ErrInvalidMapping, r)
			}
		}
	}
	return nil
}

// Page is one page of an upstream's answer, mapped.
type Page struct {
	Items []service.SourceItem
	// Bad are the records that could not be mapped (their Line is the
	// record's position in the whole snapshot).
	Bad []service.LineError
	// Next is the next page's URL as the upstream gave it; empty on the
	// last page.
	Next string
}

// MapRecords maps one page of records. first is the position (1-based) of
// the page's first record in the whole snapshot. A body that is not one
// JSON value, or without the records array, is ErrMalformed; records that
// cannot be mapped are listed in Bad.
func (m *Mapping) MapRecords(body []byte, first int) (Page, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return Page{}, fmt.Errorf("%w: not JSON: %w", ErrMalformed, err)
	}
	if len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
		return Page{}, fmt.Errorf("%w: data after the JSON value", ErrMalformed)
	}
	raw, ok := at(doc, m.Records)
	if !ok {
		return Page{}, fmt.Errorf("%w: no records at %q", ErrMalformed, m.Records)
	}
	recs, ok := raw.([]any)
	if !ok {
		return Page{}, fmt.Errorf("%w: %q is not an array", ErrMalformed, m.Records)
	}
	if len(recs) > service.MaxSourceItems {
		return Page{}, fmt.Errorf("%w: %d records on one page", service.ErrSnapshotTooLarge, len(recs))
	}
	var p Page
	if m.Next != "" {
		if v, ok := at(doc, m.Next); ok && v != nil {
			s, ok := v.(string)
			if !ok {
				return Page{}, fmt.Errorf("%w: %q is not a string", ErrMalformed, m.Next)
			}
			p.Next = s
		}
	}
	for i, r := range recs {
		line := first + i
		item, err := m.mapRecord(r)
		if err != nil {
			p.Bad = append(p.Bad, service.LineError{Line: line, Err: err})
			continue
		}
		item.Line = line
		p.Items = append(p.Items, item)
	}
	return p, nil
}

func (m *Mapping) mapRecord(r any) (service.SourceItem, error) {
	obj, ok := r.(map[string]any)
	if !ok {
		return service.SourceItem{}, errors.New("the record is not a JSON object")
	}
	get := func(field string) (string, error) {
		if c, ok := m.Constants[field]; ok {
			return c, nil
		}
		path, ok := m.Fields[field]
		if !ok {
			return "", nil
		}
		v, _ := at(obj, path)
		s, ok := scalar(v)
		if !ok {
			return "", fmt.Errorf("%s: no value at %q", field, path)
		}
		if table, ok := m.Values[field]; ok {
			t, ok := table[s]
			if !ok {
				return "", fmt.Errorf("%s: the value at %q has no entry in the mapping's value table", field, path)
			}
			s = t
		}
		return s, nil
	}
	var (
		in   service.EntryInput
		errs []error
	)
	for field, dst := range map[string]*string{fieldSubject: &in.Subject, fieldList: &in.List,
		fieldDepartment: &in.OriginatingDepartment, fieldReason: &in.Reason, fieldLegalBasis: &in.LegalBasis} {
		v, err := get(field)
		if err != nil {
			errs = append(errs, err)
		}
		*dst = v
	}
	for field, dst := range map[string]*time.Time{fieldDecidedAt: &in.DecidedAt, fieldPublishedAt: &in.PublishedAt} {
		v, err := get(field)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if *dst, err = m.parseTime(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		}
	}
	if refs, err := m.refs(obj); err != nil {
		errs = append(errs, err)
	} else {
		in.EvidenceRefs = refs
	}
	if m.Persons != nil {
		persons, err := m.Persons.persons(obj)
		if err != nil {
			errs = append(errs, err)
		}
		in.ResponsiblePersons = persons
	}
	if len(errs) > 0 {
		// Map order made errs' order random; report them sorted.
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		sort.Strings(msgs)
		return service.SourceItem{}, errors.New(strings.Join(msgs, "; "))
	}
	var key string
	if m.Key != "" {
		v, _ := at(obj, m.Key)
		k, ok := scalar(v)
		if !ok || k == "" {
			return service.SourceItem{}, fmt.Errorf("key: no value at %q", m.Key)
		}
		key = k
	}
	return service.SourceItem{Key: key, Input: in}, nil
}

// refs maps evidence_refs: a string or an array of strings.
func (m *Mapping) refs(obj map[string]any) ([]string, error) {
	if c, ok := m.Constants[fieldEvidenceRefs]; ok {
		return []string{c}, nil
	}
	path, ok := m.Fields[fieldEvidenceRefs]
	if !ok {
		return nil, nil
	}
	v, found := at(obj, path)
	if !found || v == nil {
		return nil, nil
	}
	if arr, ok := v.([]any); ok {
		out := make([]string, 0, len(arr))
		for _, e := range arr {
			s, ok := scalar(e)
			if !ok {
				return nil, fmt.Errorf("%s: a non-scalar reference at %q", fieldEvidenceRefs, path)
			}
			out = append(out, s)
		}
		return out, nil
	}
	s, ok := scalar(v)
	if !ok {
		return nil, fmt.Errorf("%s: no value at %q", fieldEvidenceRefs, path)
	}
	return []string{s}, nil
}

func (p *PersonMapping) persons(obj map[string]any) ([]policy.ResponsiblePerson, error) {
	v, found := at(obj, p.Path)
	if !found || v == nil {
		return nil, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("persons: %q is not an array", p.Path)
	}
	if len(arr) > policy.MaxResponsiblePersons {
		return nil, fmt.Errorf("persons: more than %d", policy.MaxResponsiblePersons)
	}
	out := make([]policy.ResponsiblePerson, 0, len(arr))
	for i, e := range arr {
		idv, _ := at(e, p.ID)
		id, ok := scalar(idv)
		if !ok {
			return nil, fmt.Errorf("persons[%d]: no id at %q", i, p.ID)
		}
		role := p.RoleConstant
		if p.Role != "" {
			rv, _ := at(e, p.Role)
			r, ok := scalar(rv)
			if !ok {
				return nil, fmt.Errorf("persons[%d]: no role at %q", i, p.Role)
			}
			if t, ok := p.Roles[r]; ok {
				r = t
			}
			role = r
		}
		out = append(out, policy.ResponsiblePerson{ID: id, Role: policy.Role(role)})
	}
	return out, nil
}

// chinaStandardTime is UTC+8 without depending on the tz database.
var chinaStandardTime = time.FixedZone("CST", 8*3600)

func (m *Mapping) parseTime(s string) (time.Time, error) {
	switch m.TimeFormat {
	case "":
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t, nil
		}
		if t, err := time.ParseInLocation(time.DateOnly, s, chinaStandardTime); err == nil {
			return t, nil
		}
		return time.Time{}, errors.New("neither RFC 3339 nor YYYY-MM-DD")
	case "unix", "unix_ms":
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, errors.New("not an integer epoch time")
		}
		if m.TimeFormat == "unix_ms" {
			return time.UnixMilli(n).UTC(), nil
		}
		return time.Unix(n, 0).UTC(), nil
	}
	t, err := time.ParseInLocation(m.TimeFormat, s, chinaStandardTime)
	if err != nil {
		return time.Time{}, fmt.Errorf("does not match the layout %q", m.TimeFormat)
	}
	return t, nil
}

// at follows a dot path through objects (and arrays, by index). The empty
// path is v itself.
func at(v any, path string) (any, bool) {
	if path == "" {
		return v, true
	}
	for seg := range strings.SplitSeq(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[seg]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// scalar renders a JSON string, number or boolean as text.
func scalar(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}
