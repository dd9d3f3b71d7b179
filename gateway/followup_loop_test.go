package gateway_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/internal/testenv"
)

// The closed loop (feedback, coverage, statistics, commitments) held to
// what credgate knows, over SQLite and PostgreSQL.

const taxListed = "91110108MA01WARM0H" // on the major tax violation list below

// eachFollowUpStore runs test on a harness over each store, its feedback,
// statistics and coverage at now+ahead.
func eachFollowUpStore(t *testing.T, ahead time.Duration, test func(t *testing.T, h *harness)) {
	clock := func(hc *harnessConfig) { hc.followUpNow = func() time.Time { return time.Now().Add(ahead) } }
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		test(t, newHarness(t, clock))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		st, err := postgres.Open(t.Context(), testenv.FreshDatabase(t, "loopfix_followup"))
		if err != nil {
			t.Fatal(err)
		}
		test(t, newHarness(t, clock, func(c *harnessConfig) { c.store = st }))
	})
}

// reasoned is feedback reporting every measure not applied for reason.
func reasoned(decision string, measures []string, reason string) map[string]any {
	b := feedbackBody(decision, measures, false, nil)
	for _, m := range b["measures"].([]map[string]any) {
		m["reason"] = reason
	}
	return b
}

// TestFeedbackHeldToEntries: a platform told the subject is prohibited
// cannot report the approval with reasons credgate knows to be false
// (objection_pending with no objection open, no_longer_in_force while the
// entry is active) nor leave a mandatory prohibiting measure unapplied as
// "not relevant"; an approval it may report (information found wrong,
// 篇三(十六)) shows in coverage and statistics as approved after prohibit.
func TestFeedbackHeldToEntries(t *testing.T) {
	t.Parallel()
	eachFollowUpStore(t, 0, func(t *testing.T, h *harness) {
		entry := h.entry(taxListed, "tax_major_violation", time.Now().AddDate(0, 0, -2), nil)
		partner, tok := h.partner("某市公共资源交易中心", "government_procurement")
		ans := h.check(tok, taxListed, "government_procurement")
		ms := applied(ans)
		if ans["outcome"] != "prohibit" || !strings.Contains(fmt.Sprint(ms), "tax-government-procurement") {
			t.Fatalf("check: %v", ans)
		}
		path := "/v1/checks/" + ans["check_id"].(string) + "/feedback"
		for _, reason := range []string{"no_longer_in_force", "objection_pending", "not_relevant"} {
			problemCode(t, h.doJSON(http.MethodPost, path, tok, reasoned("approved", ms, reason)), http.StatusBadRequest, "invalid_feedback")
		}
		// Refusing, a reason that states a false fact is refused all the same.
		problemCode(t, h.doJSON(http.MethodPost, path, tok, reasoned("refused", ms, "objection_pending")), http.StatusBadRequest, "invalid_feedback")
		res := h.doJSON(http.MethodPost, path, tok, reasoned("approved", ms, "information_incorrect"))
		if res.Status != http.StatusCreated {
			t.Fatalf("approval with the information reported wrong: %d %s", res.Status, res.Body)
		}

		soon := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
		cov := h.do(http.MethodPost, "/v1/coverage", tok, "text/csv",
			[]byte("subject_id,action,approved_at\n"+taxListed+",government_procurement,"+soon+"\n"))
		rep := cov.json(t)
		if cov.Status != http.StatusOK || rep["unexplained_approvals"] != 0.0 || rep["approved_after_prohibit"] != 1.0 ||
			!strings.Contains(fmt.Sprint(rep["findings"]), "finding:approved_after_prohibit") {
			t.Fatalf("coverage: %d %s", cov.Status, cov.Body)
		}
		from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
		to := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		st := h.doJSON(http.MethodGet, "/v1/admin/stats?by=partner&from="+from+"&to="+to, h.adminTok, nil)
		groups, _ := st.json(t)["groups"].([]any)
		if st.Status != http.StatusOK || len(groups) != 1 || groups[0].(map[string]any)["key"] != partner ||
			groups[0].(map[string]any)["approved_after_prohibit"] != 1.0 || groups[0].(map[string]any)["approved_after_restrict"] != 0.0 {
			t.Fatalf("stats: %d %s", st.Status, st.Body)
		}
		month := time.Now().In(time.FixedZone("CST", 8*3600)).Format("2006-01")
		csv := h.doJSON(http.MethodGet, "/v1/admin/reports/monthly?format=csv&month="+month, h.adminTok, nil)
		if lines := strings.Split(string(csv.Body), "\n"); csv.Status != http.StatusOK ||
			!strings.HasSuffix(lines[0], ",approved_after_prohibit,approved_after_restrict") || !strings.HasSuffix(lines[1], ",1,0") {
			t.Fatalf("monthly csv: %d %s", csv.Status, csv.Body)
		}

		// A check made before an objection: once the objection is open,
		// objection_pending is what credgate knows.
		before := h.check(tok, taxListed, "government_procurement")
		res = h.doJSON(http.MethodPost, "/v1/admin/entries/"+entry["id"].(string)+"/objections", h.adminTok,
			map[string]any{"filed_by": "administrator", "grounds": "主体称税款已补缴"})
		if res.Status != http.StatusCreated {
			t.Fatalf("objection: %d %s", res.Status, res.Body)
		}
		res = h.doJSON(http.MethodPost, "/v1/checks/"+before["check_id"].(string)+"/feedback", tok,
			reasoned("approved_with_conditions", applied(before), "objection_pending"))
		if res.Status != http.StatusCreated {
			t.Fatalf("approval while the objection is open: %d %s", res.Status, res.Body)
		}
	})
}

// TestCoveragePastTimeCheck: a "clear" answer about the subject's standing
// ten days ago, made just before the approval, is not the check before it
// (应查必查 asks for the standing at the decision), nor does it take the
// place of an earlier prohibit answer as the last check.
func TestCoveragePastTimeCheck(t *testing.T) {
	t.Parallel()
	eachFollowUpStore(t, 0, func(t *testing.T, h *harness) {
		h.entry(taxListed, "tax_major_violation", time.Now().AddDate(0, 0, -2), nil)
		_, tok := h.partner("某市公共资源交易中心", "government_procurement")
		pastCheck := func() {
			t.Helper()
			res := h.doJSON(http.MethodPost, "/v1/checks", tok, map[string]any{"subject": map[string]any{"id": taxListed},
				"action": "government_procurement", "valid_at": time.Now().AddDate(0, 0, -10).UTC().Format(time.RFC3339)})
			if res.Status != http.StatusOK || res.json(t)["outcome"] != "clear" {
				t.Fatalf("past-time check: %d %s", res.Status, res.Body)
			}
		}
		coverage := func() map[string]any {
			t.Helper()
			soon := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
			res := h.do(http.MethodPost, "/v1/coverage", tok, "text/csv",
				[]byte("subject_id,action,approved_at\n"+taxListed+",government_procurement,"+soon+"\n"))
			if res.Status != http.StatusOK {
				t.Fatalf("coverage: %d %s", res.Status, res.Body)
			}
			return res.json(t)
		}
		pastCheck()
		if rep := coverage(); rep["checked"] != 0.0 || rep["no_check"] != 1.0 {
			t.Fatalf("a past-time check counted as the check: %v", rep)
		}
		prohibit := h.check(tok, taxListed, "government_procurement")
		pastCheck()
		if rep := coverage(); rep["checked"] != 1.0 || rep["unexplained_approvals"] != 1.0 ||
			!strings.Contains(fmt.Sprint(rep["findings"]), prohibit["check_id"].(string)) {
			t.Fatalf("a past-time check took the place of the prohibit answer: %v", rep)
		}
	})
}

// TestCommitmentEligibility: 容缺受理 is granted to trustworthy subjects
// only (篇三 二(一), 篇五 二(二)): a missing_materials commitment rests on a
// check whose answer applied the measure granting it, never on a listed
// subject's restrict answer.
func TestCommitmentEligibility(t *testing.T) {
	t.Parallel()
	eachFollowUpStore(t, 0, func(t *testing.T, h *harness) {
		h.entry(fuListed, "safety_production_blacklist", time.Now().AddDate(0, 0, -2), nil)
		_, tok := h.partner("某区行政审批局", "administrative_licensing", "government_procurement")
		due := time.Now().AddDate(0, 0, 15).Format(time.DateOnly)
		commit := func(subject string, check map[string]any) response {
			return h.doJSON(http.MethodPost, "/v1/commitments", tok, map[string]any{"subject_id": subject, "kind": "missing_materials",
				"promise": "十五日内补交近三年财务审计报告", "due": due, "check_id": check["check_id"]})
		}
		for _, action := range []string{"government_procurement", "administrative_licensing"} {
			listed := h.check(tok, fuListed, action)
			problemCode(t, commit(fuListed, listed), http.StatusBadRequest, "invalid_commitment")
		}
		clear := h.check(tok, fuClear, "administrative_licensing")
		if !strings.Contains(fmt.Sprint(applied(clear)), "green-channel") {
			t.Fatalf("the clean subject's answer grants no 容缺受理: %v", clear)
		}
		if res := commit(fuClear, clear); res.Status != http.StatusCreated {
			t.Fatalf("容缺受理 of a clean subject: %d %s", res.Status, res.Body)
		}
	})
}

// TestStaffChecksExpectNoFeedback: an administrator's or auditor's own
// check is not a platform's: no feedback is expected of it, it is never
// overdue, and the monthly report's partner section leaves it out.
func TestStaffChecksExpectNoFeedback(t *testing.T) {
	t.Parallel()
	eachFollowUpStore(t, 30*24*time.Hour, func(t *testing.T, h *harness) {
		h.entry(taxListed, "tax_major_violation", time.Now().AddDate(0, 0, -2), nil)
		partner, tok := h.partner("某市公共资源交易中心", "government_procurement")
		mine := h.check(tok, taxListed, "government_procurement")
		h.check(h.adminTok, taxListed, "government_procurement")
		res := h.doJSON(http.MethodGet, "/v1/admin/feedback/overdue", h.adminTok, nil)
		if od, _ := res.json(t)["overdue"].([]any); res.Status != http.StatusOK || len(od) != 1 ||
			od[0].(map[string]any)["check_id"] != mine["check_id"] {
			t.Fatalf("overdue: %d %s", res.Status, res.Body)
		}
		from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
		to := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		res = h.doJSON(http.MethodGet, "/v1/admin/stats?from="+from+"&to="+to, h.adminTok, nil)
		total := res.json(t)["groups"].([]any)[0].(map[string]any)
		if total["checks"] != 2.0 || total["feedback_expected"] != 1.0 || total["overdue"] != 1.0 {
			t.Fatalf("total: %v", total)
		}
		month := time.Now().In(time.FixedZone("CST", 8*3600)).Format("2006-01")
		res = h.doJSON(http.MethodGet, "/v1/admin/reports/monthly?month="+month, h.adminTok, nil)
		parts, _ := res.json(t)["by_partner"].([]any)
		if res.Status != http.StatusOK || len(parts) != 1 || parts[0].(map[string]any)["key"] != partner {
			t.Fatalf("partner section: %d %s", res.Status, res.Body)
		}
	})
}

// TestMonthlyReportRecorded: the act of a monthly report records the
// SHA-256 of its CSV, and the answer names the act's record.
func TestMonthlyReportRecorded(t *testing.T) {
	t.Parallel()
	h, _, tok := followUpHarness(t, 0)
	h.check(tok, fuListed, "government_procurement")
	month := time.Now().In(time.FixedZone("CST", 8*3600)).Format("2006-01")
	res := h.doJSON(http.MethodGet, "/v1/admin/reports/monthly?month="+month, h.adminTok, nil)
	rep := res.json(t)
	csv := h.doJSON(http.MethodGet, "/v1/admin/reports/monthly?format=csv&month="+month, h.adminTok, nil)
	sum := sha256.Sum256(csv.Body)
	if res.Status != http.StatusOK || rep["record_id"] == nil || rep["record_id"] == "" || rep["report_sha256"] != hex.EncodeToString(sum[:]) {
		t.Fatalf("monthly report: %d %s", res.Status, res.Body)
	}
	rec := h.doJSON(http.MethodGet, "/v1/evidence/receipts/"+rep["record_id"].(string), h.adminTok, nil)
	if rec.Status != http.StatusOK {
		t.Fatalf("the act's receipt: %d %s", rec.Status, rec.Body)
	}
}
