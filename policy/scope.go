package policy

import (
	"errors"
	"fmt"
	"strings"
)

// Scope says where and on whom a measure binds. A measure that only a local
// text creates binds only that place's authorities and, where the text says
// so, only an industry, a type of subject or a type of employer; applying it
// elsewhere is itself a violation (篇四 第二十四条: 不得…超越范围实施失信惩戒措施).
// The zero Scope is national and unconditional.
type Scope struct {
	// Regions are GB/T 2260 administrative division codes (6 digits). The
	// measure applies to a caller whose region is one of them or lies below
	// one (370100 Jinan covers 370102); empty means national.
	Regions []string `yaml:"regions,omitempty" json:"regions,omitempty"`
	// Industries, SubjectTypes and EmployerTypes name ids declared in the
	// catalogue's vocabularies; a measure with any of them applies only when
	// the check states a matching value in its context.
	Industries    []string `yaml:"industries,omitempty" json:"industries,omitempty"`
	SubjectTypes  []string `yaml:"subject_types,omitempty" json:"subject_types,omitempty"`
	EmployerTypes []string `yaml:"employer_types,omitempty" json:"employer_types,omitempty"`
	// Source is the passage that sets the scope (the issuing body's
	// jurisdiction, or the text's own words such as "煤矿企业").
	Source string `yaml:"source,omitempty" json:"source,omitempty"`
}

// IsZero reports whether the scope is national and unconditional.
func (s Scope) IsZero() bool {
	return len(s.Regions) == 0 && len(s.Industries) == 0 && len(s.SubjectTypes) == 0 && len(s.EmployerTypes) == 0
}

// IsNational reports whether the scope has no region.
func (s Scope) IsNational() bool { return len(s.Regions) == 0 }

// Term is one entry of a scope vocabulary (an industry, a subject type, an
// employer type): what a check's context may name.
type Term struct {
	ID     string `yaml:"id" json:"id"`
	Name   string `yaml:"name" json:"name"`
	Source string `yaml:"source,omitempty" json:"source,omitempty"`
}

// Region is a GB/T 2260 administrative division the catalogue names.
type Region struct {
	Code string `yaml:"code" json:"code"`
	Name string `yaml:"name" json:"name"`
}

// SourceFix declares a correction of the source text's extraction (an OCR
// or PDF fault) that a measure's text relies on: From is what the source
// file holds, To what the measure quotes instead, Why the reason.
type SourceFix struct {
	From string `yaml:"from" json:"from"`
	To   string `yaml:"to" json:"to"`
	Why  string `yaml:"why" json:"why"`
}

// ErrRegionInvalid: not a 6-digit GB/T 2260 code.
var ErrRegionInvalid = errors.New("invalid region code")

// ValidRegion reports whether code has the shape of a GB/T 2260 code: six
// digits, a province part that is not 00, and no county part without its
// prefecture part (the zero-padded levels are what make containment work).
func ValidRegion(code string) error {
	if len(code) != 6 {
		return fmt.Errorf("%w %q: want 6 digits", ErrRegionInvalid, code)
	}
	for i := 0; i < 6; i++ {
		if code[i] < '0' || code[i] > '9' {
			return fmt.Errorf("%w %q: want 6 digits", ErrRegionInvalid, code)
		}
	}
	if code[:2] == "00" {
		return fmt.Errorf("%w %q: no province", ErrRegionInvalid, code)
	}
	if code[2:4] == "00" && code[4:] != "00" {
		return fmt.Errorf("%w %q: a county code needs its prefecture", ErrRegionInvalid, code)
	}
	return nil
}

// regionPrefix is the significant part of a valid code: 370000 → 37,
// 370100 → 3701, 370102 → 370102.
func regionPrefix(code string) string {
	switch {
	case code[2:] == "0000":
		return code[:2]
	case code[4:] == "00":
		return code[:4]
	}
	return code
}

// RegionWithin reports whether region lies within (or is) area. Both must
// be valid codes.
func RegionWithin(region, area string) bool {
	return strings.HasPrefix(region, regionPrefix(area))
}

// validateScope checks a measure's scope against the catalogue's
// vocabularies.
func (c *Catalog) validateScope(s Scope) error {
	for _, r := range s.Regions {
		if err := ValidRegion(r); err != nil {
			return err
		}
		if _, ok := c.regionByCode[r]; !ok {
			return fmt.Errorf("scope: region %s is not declared under regions", r)
		}
	}
	for _, v := range []struct {
		what  string
		ids   []string
		known map[string]*Term
	}{
		{"industry", s.Industries, c.industryByID},
		{"subject type", s.SubjectTypes, c.subjectTypeByID},
		{"employer type", s.EmployerTypes, c.employerTypeByID},
	} {
		for _, id := range v.ids {
			if _, ok := v.known[id]; !ok {
				return fmt.Errorf("scope: %s %q is not declared", v.what, id)
			}
		}
	}
	if (len(s.Regions) > 0 || len(s.Industries) > 0 || len(s.SubjectTypes) > 0 || len(s.EmployerTypes) > 0) && s.Source == "" {
		return errors.New("scope: source is required when a scope is set")
	}
	return nil
}

// Regions returns the regions the catalogue declares.
func (c *Catalog) Regions() []Region { return c.regions }

// Region returns the declared region with the given code.
func (c *Catalog) Region(code string) (Region, bool) {
	r, ok := c.regionByCode[code]
	if !ok {
		return Region{}, false
	}
	return *r, true
}

// Industries, SubjectTypes and EmployerTypes return the scope vocabularies.
func (c *Catalog) Industries() []Term    { return c.industries }
func (c *Catalog) SubjectTypes() []Term  { return c.subjectTypes }
func (c *Catalog) EmployerTypes() []Term { return c.employerTypes }

// Industry, SubjectType and EmployerType report whether id is declared.
func (c *Catalog) Industry(id string) bool     { _, ok := c.industryByID[id]; return ok }
func (c *Catalog) SubjectType(id string) bool  { _, ok := c.subjectTypeByID[id]; return ok }
func (c *Catalog) EmployerType(id string) bool { _, ok := c.employerTypeByID[id]; return ok }

// indexTerms builds an id index over a vocabulary, refusing duplicates and
// blanks.
func indexTerms(what string, terms []Term) (map[string]*Term, error) {
	idx := make(map[string]*Term, len(terms))
	for i := range terms {
		t := &terms[i]
		if t.ID == "" || t.Name == "" {
			return nil, fmt.Errorf("%s %q: id and name are required", what, t.ID)
		}
		if _, dup := idx[t.ID]; dup {
			return nil, fmt.Errorf("%s %q defined twice", what, t.ID)
		}
		idx[t.ID] = t
	}
	return idx, nil
}

// Errors of a check's context: a value the catalogue's vocabularies do not
// declare. (A malformed region is ErrRegionInvalid.)
var (
	ErrUnknownIndustry     = errors.New("unknown industry")
	ErrUnknownSubjectType  = errors.New("unknown subject type")
	ErrUnknownEmployerType = errors.New("unknown employer type")
)

// MaxContextValueLen bounds each value of a check's context.
const MaxContextValueLen = 100

// ValidateContext checks a check's context against the catalogue: the
// region must be a valid code (it need not be declared: a caller may sit
// anywhere), the other values must be declared in their vocabularies.
// Empty values are not stated and always valid.
func (c *Catalog) ValidateContext(ctx CheckContext) error {
	if ctx.Region != "" {
		if err := ValidRegion(ctx.Region); err != nil {
			return err
		}
	}
	for _, v := range [...]struct {
		val   string
		known map[string]*Term
		err   error
	}{
		{ctx.Industry, c.industryByID, ErrUnknownIndustry},
		{ctx.SubjectType, c.subjectTypeByID, ErrUnknownSubjectType},
		{ctx.EmployerType, c.employerTypeByID, ErrUnknownEmployerType},
	} {
		if v.val == "" {
			continue
		}
		if _, ok := v.known[v.val]; !ok {
			if len(v.val) > MaxContextValueLen {
				return fmt.Errorf("%w: longer than %d bytes", v.err, MaxContextValueLen)
			}
			return fmt.Errorf("%w %q: not declared in the catalogue", v.err, v.val)
		}
	}
	return nil
}
