package policy

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestFreeTextRefusesControlCharacters: every free text of an entry, a
// decision, an application and a violation is refused when it holds NUL
// or another control character (PostgreSQL cannot store U+0000; SQLite
// did), whichever way it came: the JSON API refuses it at decoding, but
// upstream snapshots and the console reach policy without it. The error
// names the field and does not repeat the character.
func TestFreeTextRefusesControlCharacters(t *testing.T) {
	c := bundledCat(t)
	at := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	org := SubjectID{Kind: KindOrganization, Value: "91350100M000100Y43"}
	entry := func(f func(*Entry)) error {
		e := Entry{ID: "e", Subject: org, List: "safety_production_blacklist", OriginatingDepartment: "应急管理部",
			Reason: "重大事故\n第二行\t缩进\r", LegalBasis: "《安全生产法》", DecidedAt: at, PublishedAt: at}
		f(&e)
		_, err := c.PrepareEntry(e)
		return err
	}
	if err := entry(func(*Entry) {}); err != nil {
		t.Fatalf("tab, line feed and carriage return are text: %v", err)
	}
	var item string
	for _, it := range c.ViolationItems() {
		if it.RuleSet == "urban_management" {
			item = it.ID
			break
		}
	}
	violation := func(f func(*ViolationRecord)) error {
		r := ViolationRecord{ID: "v", Subject: org, Item: item, Department: "城管", Reference: "r", DecidedAt: at, RecordedAt: at}
		f(&r)
		_, err := c.PrepareViolation(r)
		return err
	}
	application := func(f func(*ApplicationInput)) error {
		in := ApplicationInput{Grounds: "已整改"}
		f(&in)
		_, err := in.validate()
		return err
	}
	for _, tc := range []struct {
		name  string
		err   error
		kind  error
		field string
	}{
		{"entry reason NUL", entry(func(e *Entry) { e.Reason = "重大\x00事故" }), ErrInvalidEntry, "reason"},
		{"entry department ESC", entry(func(e *Entry) { e.OriginatingDepartment = "应急\x1b[2J管理部" }), ErrInvalidEntry, "originating_department"},
		{"entry legal basis not UTF-8", entry(func(e *Entry) { e.LegalBasis = "\xff" }), ErrInvalidEntry, "legal_basis"},
		{"entry evidence ref", entry(func(e *Entry) { e.EvidenceRefs = []string{"ok", "a\x00"} }), ErrInvalidEntry, "evidence_refs[1]"},
		{"violation department", violation(func(r *ViolationRecord) { r.Department = "城\x00管" }), ErrInvalidViolation, "department"},
		{"violation reference", violation(func(r *ViolationRecord) { r.Reference = "r\x07" }), ErrInvalidViolation, "reference"},
		{"violation evidence ref", violation(func(r *ViolationRecord) { r.EvidenceRefs = []string{"\x00"} }), ErrInvalidViolation, "evidence_refs[0]"},
		{"application grounds", application(func(in *ApplicationInput) { in.Grounds = "已\x00整改" }), ErrInvalidApplication, "grounds"},
		{"application evidence ref", application(func(in *ApplicationInput) { in.EvidenceRefs = []string{"x\x01"} }), ErrInvalidApplication, "evidence_refs[0]"},
		{"objection note", func() error {
			_, err := c.DecideObjection(Entry{}, "o", ObjectionDecision{Decision: DecisionRejected, Note: "驳回\x00"}, at)
			return err
		}(), ErrInvalidDecision, "note"},
		{"repair finding", func() error { _, err := c.ReviewRepair(Entry{}, "r", "整改\x00到位", "approve", at); return err }(), ErrInvalidDecision, "finding"},
		{"repair note", func() error {
			_, err := c.DecideRepair(Entry{}, "r", false, "不\x00予", RepairHistory{}, at)
			return err
		}(), ErrInvalidDecision, "note"},
		{"exit note", func() error { _, err := c.DecideExit(Entry{}, "x", false, "不\x00予", at); return err }(), ErrInvalidDecision, "note"},
	} {
		if !errors.Is(tc.err, tc.kind) || !strings.Contains(tc.err.Error(), tc.field+" ") {
			t.Errorf("%s: %v; want %v naming %s", tc.name, tc.err, tc.kind, tc.field)
			continue
		}
		if strings.ContainsAny(tc.err.Error(), "\x00\x1b\x07\x01") || strings.Contains(tc.err.Error(), "\xff") {
			t.Errorf("%s: the error repeats the character: %q", tc.name, tc.err)
		}
	}
}
