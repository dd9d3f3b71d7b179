package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/credgate/credgate/internal/telemetry/spans"
	"github.com/credgate/credgate/policy"
)

// A check's context and its valid time.
//
// Measures are scoped (policy.Scope): a measure a local text creates binds
// only in its region and, where the text says so, only an industry, a
// subject type or an employer type. The caller's effective region is the
// region its check names, else the region its partner is registered for;
// a partner may narrow its jurisdiction but never widen it, and a partner
// registered without a region gets national measures only. Administrators
// and auditors (who re-run checks of partners) may name any region.
//
// ValidAt asks about the standing at a past time ("was this bidder listed
// on the day of the award?"): the entries as known now, decided at that
// time. AsOf asks what credgate knew then; together they give the entries
// as known at AsOf, decided at ValidAt. Whoever may check may ask
// ValidAt — it is an implementing department's own question about its
// past decision, and it is recorded as that department's check; AsOf stays
// for administrators and auditors.

// Errors of a check's context and valid time.
var (
	// ErrRegionOutsideJurisdiction: the check names a region outside the
	// partner's registered region, or the partner has none.
	ErrRegionOutsideJurisdiction = errors.New("region outside the partner's jurisdiction")
	// ErrInvalidValidAt: valid_at is missing its time or in the future.
	ErrInvalidValidAt = errors.New("invalid valid_at time")
)

// ContextView is the effective context of a check, as recorded in its
// answer: what the measures' scopes were matched against.
type ContextView struct {
	Region       string `json:"region,omitempty"`
	Industry     string `json:"industry,omitempty"`
	SubjectType  string `json:"subject_type,omitempty"`
	EmployerType string `json:"employer_type,omitempty"`
}

// ViolationReader reads a subject's violation records known at knownAt
// (all when zero), as LifecycleStore does.
type ViolationReader interface {
	ViolationRecords(ctx context.Context, subject string, knownAt time.Time) ([]policy.ViolationRecord, error)
}

// WithViolations sets where eligibility reads violation records (default:
// the history, else the evidence reader when it is a store that has them).
func WithViolations(r ViolationReader) CheckerOption { return func(c *Checker) { c.violations = r } }

// effectiveContext validates the context a check states and fills in the
// caller's registered region when it names none.
func (c *Checker) effectiveContext(caller Caller, stated policy.CheckContext) (policy.CheckContext, error) {
	if err := c.catalog.ValidateContext(stated); err != nil {
		return policy.CheckContext{}, err
	}
	ctx := stated
	switch {
	case stated.Region == "":
		ctx.Region = caller.Region
	case caller.Role == RoleAdmin || caller.Role == RoleAuditor:
	case caller.Region == "":
		return policy.CheckContext{}, fmt.Errorf("%w: the partner has no registered region and gets national measures only; it may not name region %s",
			ErrRegionOutsideJurisdiction, stated.Region)
	case !policy.RegionWithin(stated.Region, caller.Region):
		return policy.CheckContext{}, fmt.Errorf("%w: region %s is not within the registered region %s", ErrRegionOutsideJurisdiction, stated.Region, caller.Region)
	}
	return ctx, nil
}

func contextView(ctx policy.CheckContext) ContextView {
	return ContextView{Region: ctx.Region, Industry: ctx.Industry, SubjectType: ctx.SubjectType, EmployerType: ctx.EmployerType}
}

// validValidAt checks a valid time: set and not in the future.
func (c *Checker) validValidAt(at *time.Time) error {
	if at == nil {
		return nil
	}
	if at.IsZero() {
		return fmt.Errorf("%w: the time is required", ErrInvalidValidAt)
	}
	if at.After(c.now()) {
		return fmt.Errorf("%w: %s is in the future", ErrInvalidValidAt, at.UTC().Format(time.RFC3339))
	}
	return nil
}

// violationsFor reads, only for actions with an eligibility measure, the
// decision times of the subject's violation records known at knownAt (all
// when zero). When they cannot be read, eligibility is not established
// (unknown) and the rest of the check goes on: a licensing office still
// gets its restrictions while the store is unreachable.
func (c *Checker) violationsFor(ctx context.Context, action, subject string, knownAt time.Time) (times []time.Time, unknown bool) {
	if !c.catalog.HasEligibility(action) {
		return nil, false
	}
	if c.violations == nil {
		return nil, true
	}
	ctx, span := c.span(ctx, spans.Violations)
	rs, err := c.violations.ViolationRecords(ctx, subject, knownAt)
	endSpan(span, err)
	if err != nil || len(rs) > MaxSubjectRecords {
		// Truncated records may hide the latest violation.
		return nil, true
	}
	return violationTimes(rs), false
}

func violationTimes(rs []policy.ViolationRecord) []time.Time {
	if len(rs) == 0 {
		return nil
	}
	out := make([]time.Time, len(rs))
	for i, r := range rs {
		out[i] = r.DecidedAt
	}
	return out
}
