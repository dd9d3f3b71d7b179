package service

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/credgate/credgate/policy"
)

// Coverage (应查必查, 篇三(十三), 篇五(十七)): a partner or an auditor submits
// the approvals a system made, and credgate answers which had no check of
// the subject for the action in the window before, which followed a
// prohibit or restrict answer without feedback that reports the approval,
// and which followed a prohibit answer whose feedback does report it.
// The file is read as a stream, a chunk of rows at a time, each chunk one
// query of index probes: its size is bounded by MaxCoverageRows, never by
// memory.

// Errors of coverage.
var (
	// ErrInvalidCoverage: the file's header or the window is wrong.
	ErrInvalidCoverage = errors.New("invalid approvals file")
	// ErrCoverageTooLarge: more rows than MaxCoverageRows.
	ErrCoverageTooLarge = errors.New("approvals file too large")
)

// Limits of coverage.
const (
	MaxCoverageRows     = 5_000_000
	MaxCoverageFindings = 10_000
	MaxCoverageWindow   = 366 * 24 * time.Hour
	DefaultCoverageDays = 30
)

// Findings of coverage.
const (
	// FindingNoCheck: no check of the subject for the action in the window.
	FindingNoCheck = "no_check"
	// FindingUnexplained: the last check answered prohibit or restrict, and
	// no feedback on it reports an approval.
	FindingUnexplained = "unexplained_approval"
	// FindingApprovedAfterProhibit: the last check answered prohibit, and
	// its feedback reports an approval: explained by the partner, but an
	// approval of what credgate said the action was prohibited for, which
	// an auditor reads (with the feedback's reasons) rather than counts as
	// explained.
	FindingApprovedAfterProhibit = "approved_after_prohibit"
	// FindingInvalid: the row could not be read.
	FindingInvalid = "invalid_row"
)

// CoverageFinding is one approval credgate finds wanting.
type CoverageFinding struct {
	Line       int       `json:"line"`
	Finding    string    `json:"finding"`
	Subject    string    `json:"subject_id,omitempty"`
	Action     string    `json:"action,omitempty"`
	ApprovedAt time.Time `json:"approved_at,omitzero"`
	Reference  string    `json:"reference,omitempty"`
	// CheckID, Outcome and Decision describe the check found (unexplained
	// approvals); Decision is its current feedback's, if any.
	CheckID  string `json:"check_id,omitempty"`
	Outcome  string `json:"outcome,omitempty"`
	Decision string `json:"feedback_decision,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// CoverageReport sums up an approvals file.
type CoverageReport struct {
	Partner     string `json:"partner,omitempty"`
	WindowDays  int    `json:"window_days"`
	Rows        int64  `json:"rows"`
	Checked     int64  `json:"checked"`
	NoCheck     int64  `json:"no_check"`
	Unexplained int64  `json:"unexplained_approvals"`
	// ApprovedAfterProhibit counts the approvals whose last check
	// answered prohibit and whose feedback reports the approval.
	ApprovedAfterProhibit int64 `json:"approved_after_prohibit"`
	Invalid               int64 `json:"invalid_rows"`
	// CoverageRate is checked / valid rows.
	CoverageRate float64 `json:"coverage_rate"`
	// FileSHA256 identifies the file the figures are about.
	FileSHA256        string            `json:"file_sha256"`
	Findings          []CoverageFinding `json:"findings"`
	FindingsTruncated bool              `json:"findings_truncated"`
	// RecordID is the evidence record of this answer.
	RecordID string `json:"record_id,omitempty"`
}

// Coverage compares approvals with checks.
type Coverage struct {
	catalog *policy.Catalog
	store   FollowUpStore
	audit   *Audit
}

// NewCoverage returns the coverage use case; each answer is recorded in
// the evidence log through audit (nil: not recorded, for tests of other
// concerns).
func NewCoverage(cat *policy.Catalog, store FollowUpStore, audit *Audit) *Coverage {
	return &Coverage{catalog: cat, store: store, audit: audit}
}

// ActCoverageComputed: a coverage answer left credgate.
const ActCoverageComputed Act = "coverage_computed"

// Run reads an approvals file (CSV with header subject_id,action,
// approved_at[,reference]; approved_at RFC 3339) and compares it with the
// checks of partner ("": every partner's) in the windowDays before each
// approval.
func (c *Coverage) Run(ctx context.Context, r io.Reader, partner string, windowDays int) (CoverageReport, error) {
	if windowDays == 0 {
		windowDays = DefaultCoverageDays
	}
	window := time.Duration(windowDays) * 24 * time.Hour
	if windowDays < 0 || window > MaxCoverageWindow {
		return CoverageReport{}, fmt.Errorf("%w: window_days %d out of 1..366", ErrInvalidCoverage, windowDays)
	}
	digest := sha256.New()
	cr := newCSVReader(io.TeeReader(r, digest)) // the digest is of the file as sent, mark and all
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return CoverageReport{}, fmt.Errorf("%w: no header: %w", ErrInvalidCoverage, csvErr(err))
	}
	if len(head) < 3 || len(head) > 4 || head[0] != "subject_id" || head[1] != "action" ||
		head[2] != "approved_at" || (len(head) == 4 && head[3] != "reference") {
		return CoverageReport{}, fmt.Errorf("%w: the header must be subject_id,action,approved_at[,reference]", ErrInvalidCoverage)
	}
	rep := CoverageReport{Partner: partner, WindowDays: windowDays, Findings: []CoverageFinding{}}
	add := func(f CoverageFinding) {
		if len(rep.Findings) < MaxCoverageFindings {
			rep.Findings = append(rep.Findings, f)
		} else {
			rep.FindingsTruncated = true
		}
	}
	var (
		probes []CheckProbe
		rows   []CoverageFinding // the rows of probes, for their findings
	)
	flush := func() error {
		if len(probes) == 0 {
			return nil
		}
		hits, err := c.store.LastChecks(ctx, partner, probes)
		if err != nil {
			return err
		}
		for i, h := range hits {
			f := rows[i]
			switch {
			case h.Check == nil:
				rep.NoCheck++
				f.Finding = FindingNoCheck
				add(f)
				continue
			}
			rep.Checked++
			o := policy.Outcome(h.Check.Outcome)
			approves := policy.BusinessDecision(h.Decision).Approves()
			switch {
			case (o == policy.OutcomeProhibit || o == policy.OutcomeRestrict) && !approves:
				rep.Unexplained++
				f.Finding, f.CheckID, f.Outcome, f.Decision = FindingUnexplained, h.Check.CheckID, h.Check.Outcome, h.Decision
				add(f)
			case o == policy.OutcomeProhibit:
				rep.ApprovedAfterProhibit++
				f.Finding, f.CheckID, f.Outcome, f.Decision = FindingApprovedAfterProhibit, h.Check.CheckID, h.Check.Outcome, h.Decision
				add(f)
			}
		}
		probes, rows = probes[:0], rows[:0]
		return nil
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return CoverageReport{}, csvErr(err)
			}
			rep.Rows++
			if rep.Rows > MaxCoverageRows {
				return CoverageReport{}, fmt.Errorf("%w: more than %d rows", ErrCoverageTooLarge, MaxCoverageRows)
			}
			rep.Invalid++
			add(CoverageFinding{Line: pe.Line, Finding: FindingInvalid, Detail: pe.Err.Error()})
			continue
		}
		line, _ := cr.FieldPos(0)
		rep.Rows++
		if rep.Rows > MaxCoverageRows {
			return CoverageReport{}, fmt.Errorf("%w: more than %d rows", ErrCoverageTooLarge, MaxCoverageRows)
		}
		f, at, err := c.row(rec, line)
		if err != nil {
			rep.Invalid++
			add(CoverageFinding{Line: line, Finding: FindingInvalid, Detail: err.Error()})
			continue
		}
		probes = append(probes, CheckProbe{Subject: f.Subject, Action: f.Action, Since: at.Add(-window), At: at})
		rows = append(rows, f)
		if len(probes) == MaxProbes {
			if err := flush(); err != nil {
				return CoverageReport{}, err
			}
		}
	}
	if err := flush(); err != nil {
		return CoverageReport{}, err
	}
	if valid := rep.Rows - rep.Invalid; valid > 0 {
		rep.CoverageRate = ratio(rep.Checked, valid)
	}
	rep.FileSHA256 = hex.EncodeToString(digest.Sum(nil))
	if c.audit != nil {
		rec, err := c.audit.Record(ctx, ActCoverageComputed, rep.FileSHA256, map[string]any{
			"partner": partner, "window_days": windowDays, "rows": rep.Rows, "checked": rep.Checked,
			"no_check": rep.NoCheck, "unexplained_approvals": rep.Unexplained, "approved_after_prohibit": rep.ApprovedAfterProhibit,
			"invalid_rows": rep.Invalid,
		})
		if err != nil {
			return CoverageReport{}, err
		}
		rep.RecordID = rec.ID
	}
	return rep, nil
}

// row reads one approval; the error says what is wrong with it, never
// quoting the subject (which may be an ID number).
func (c *Coverage) row(rec []string, line int) (CoverageFinding, time.Time, error) {
	if len(rec) < 3 || len(rec) > 4 {
		return CoverageFinding{}, time.Time{}, fmt.Errorf("%d fields, want 3 or 4", len(rec))
	}
	subject, err := policy.ParseSubjectID(strings.TrimSpace(rec[0]))
	if err != nil {
		return CoverageFinding{}, time.Time{}, errors.New("subject_id is not a valid USCC or ID number")
	}
	action := strings.TrimSpace(rec[1])
	if _, ok := c.catalog.Action(action); !ok {
		return CoverageFinding{}, time.Time{}, fmt.Errorf("unknown action %.64q", action)
	}
	at, err := time.Parse(time.RFC3339, strings.TrimSpace(rec[2]))
	if err != nil {
		return CoverageFinding{}, time.Time{}, errors.New("approved_at is not an RFC 3339 time")
	}
	f := CoverageFinding{Line: line, Subject: subject.Value, Action: action, ApprovedAt: at.UTC()}
	if len(rec) == 4 {
		if len(rec[3]) > MaxReferenceLen {
			return CoverageFinding{}, time.Time{}, fmt.Errorf("reference longer than %d bytes", MaxReferenceLen)
		}
		f.Reference = rec[3]
	}
	return f, at, nil
}

// csvErr passes a body that was too large (or a broken connection) as it
// is, and marks other read errors as the file's fault.
func csvErr(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %w", ErrInvalidCoverage, err)
	}
	return err
}
