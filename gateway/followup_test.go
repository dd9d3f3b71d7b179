package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/evidence"
)

const (
	fuListed = "914403001922038216" // on the safety production black list below
	fuClear  = "91110000MA01ABCDEX"
)

// followUpHarness is a harness whose feedback, statistics and commitments
// run at now+ahead, with a listed subject and a licensing partner.
func followUpHarness(t *testing.T, ahead time.Duration) (*harness, string, string) {
	t.Helper()
	h := newHarness(t, func(hc *harnessConfig) {
		hc.followUpNow = func() time.Time { return time.Now().Add(ahead) }
	})
	now := time.Now().UTC()
	res := h.doJSON(http.MethodPost, "/v1/admin/entries", h.adminTok, map[string]any{
		"subject_id": fuListed, "list": "safety_production_blacklist", "originating_department": "深圳市应急管理局",
		"reason": "发生较大生产安全责任事故", "legal_basis": "《安全生产法》",
		"decided_at": now.Add(-72 * time.Hour).Format(time.RFC3339), "published_at": now.Add(-48 * time.Hour).Format(time.RFC3339),
	})
	if res.Status != http.StatusCreated {
		t.Fatalf("entry: %d %s", res.Status, res.Body)
	}
	id, tok := h.partner("某市公共资源交易中心", "government_procurement")
	return h, id, tok
}

// applied lists the measures a check's answer applied.
func applied(ans map[string]any) []string {
	var out []string
	for _, m := range ans["measures"].([]any) {
		if mm := m.(map[string]any); mm["status"] == "applied" {
			out = append(out, mm["id"].(string))
		}
	}
	return out
}

func feedbackBody(decision string, measures []string, applied bool, extra map[string]any) map[string]any {
	ms := make([]map[string]any, len(measures))
	for i, id := range measures {
		ms[i] = map[string]any{"id": id, "applied": applied}
		if !applied {
			ms[i]["reason"] = "information_incorrect"
		}
	}
	b := map[string]any{"decision": decision, "measures": ms, "document": "行政许可决定 2026-118",
		"decided_at": time.Now().UTC().Format(time.RFC3339Nano)}
	for k, v := range extra {
		b[k] = v
	}
	return b
}

func TestFeedback(t *testing.T) {
	t.Parallel()
	h, _, tok := followUpHarness(t, 0)
	_, other := h.partner("某银行", "government_procurement")
	ans := h.check(tok, fuListed, "government_procurement")
	checkID := ans["check_id"].(string)
	ms := applied(ans)
	if ans["outcome"] == "clear" || len(ms) == 0 {
		t.Fatalf("the listed subject is clear: %v", ans)
	}
	path := "/v1/checks/" + checkID + "/feedback"

	// Refused: every applied measure must be reported, with a reason when not applied.
	problemCode(t, h.doJSON(http.MethodPost, path, tok, feedbackBody("refused", ms[1:], true, nil)), http.StatusBadRequest, "invalid_feedback")
	bad := feedbackBody("refused", ms, false, nil)
	bad["measures"].([]map[string]any)[0]["reason"] = "forgot"
	problemCode(t, h.doJSON(http.MethodPost, path, tok, bad), http.StatusBadRequest, "invalid_feedback")
	problemCode(t, h.doJSON(http.MethodPost, path, tok, feedbackBody("approved", ms, true,
		map[string]any{"decided_at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)})), http.StatusBadRequest, "invalid_feedback")
	problemCode(t, h.doJSON(http.MethodPost, path, tok, feedbackBody("maybe", ms, true, nil)), http.StatusBadRequest, "invalid_feedback")
	// Another partner neither reports on nor reads the check.
	problemCode(t, h.doJSON(http.MethodPost, path, other, feedbackBody("refused", ms, true, nil)), http.StatusNotFound, "not_found")
	problemCode(t, h.doJSON(http.MethodGet, path, other, nil), http.StatusNotFound, "not_found")

	res := h.doJSON(http.MethodPost, path, tok, feedbackBody("refused", ms, true, nil))
	if res.Status != http.StatusCreated {
		t.Fatalf("feedback: %d %s", res.Status, res.Body)
	}
	first := res.json(t)
	if first["late"] != false || first["check_id"] != checkID || first["receipt"] == nil {
		t.Fatalf("feedback: %s", res.Body)
	}
	// The feedback is an evidence record whose receipt verifies offline.
	rres, r := h.receipt(tok, first["feedback_id"].(string))
	if rres.Status != http.StatusOK {
		t.Fatalf("receipt: %d %s", rres.Status, rres.Body)
	}
	v, err := evidence.VerifyReceipt(r, h.verifiers())
	if err != nil || v.Record.Kind != evidence.KindFeedback {
		t.Fatalf("feedback receipt: %+v, %v", v.Record, err)
	}

	// A second feedback must say it corrects the first; it appends.
	problemCode(t, h.doJSON(http.MethodPost, path, tok, feedbackBody("approved_with_conditions", ms, false, nil)), http.StatusConflict, "feedback_exists")
	problemCode(t, h.doJSON(http.MethodPost, path, tok, feedbackBody("approved_with_conditions", ms, false,
		map[string]any{"corrects": "fb_nonsense"})), http.StatusConflict, "feedback_exists")
	res = h.doJSON(http.MethodPost, path, tok, feedbackBody("approved_with_conditions", ms, false,
		map[string]any{"corrects": first["feedback_id"], "note": "经核实信息有误,已告知信息提供单位"}))
	if res.Status != http.StatusCreated {
		t.Fatalf("correction: %d %s", res.Status, res.Body)
	}
	res = h.doJSON(http.MethodGet, path, tok, nil)
	var list struct {
		Feedback []map[string]any `json:"feedback"`
	}
	_ = json.Unmarshal(res.Body, &list)
	if res.Status != http.StatusOK || len(list.Feedback) != 2 || list.Feedback[0]["decision"] != "refused" ||
		list.Feedback[1]["corrects"] != first["feedback_id"] {
		t.Fatalf("feedback of the check: %d %s", res.Status, res.Body)
	}
	// Lists: a partner its own, the administrator all.
	for _, c := range []struct {
		token string
		n     int
	}{{tok, 2}, {other, 0}, {h.adminTok, 2}} {
		res := h.doJSON(http.MethodGet, "/v1/feedback?limit=10", c.token, nil)
		_ = json.Unmarshal(res.Body, &list)
		if res.Status != http.StatusOK || len(list.Feedback) != c.n {
			t.Fatalf("feedback list: %d %s, want %d", res.Status, res.Body, c.n)
		}
	}
	res = h.doJSON(http.MethodGet, "/v1/feedback?limit=1", h.adminTok, nil)
	if m := res.json(t); m["next"] == nil {
		t.Fatalf("first page without next: %s", res.Body)
	}
	problemCode(t, h.doJSON(http.MethodGet, "/v1/feedback?limit=0", h.adminTok, nil), http.StatusBadRequest, "invalid_query")
}

func TestOverdueStatsAndReport(t *testing.T) {
	t.Parallel()
	// Feedback, statistics and the report look 30 days ahead: the checks
	// made now are overdue by then.
	h, partner, tok := followUpHarness(t, 30*24*time.Hour)
	answered := h.check(tok, fuListed, "government_procurement")
	overdue := h.check(tok, fuListed, "government_procurement")
	h.check(tok, fuClear, "government_procurement")
	res := h.doJSON(http.MethodPost, "/v1/checks/"+answered["check_id"].(string)+"/feedback", tok,
		feedbackBody("refused", applied(answered), true, nil))
	if res.Status != http.StatusCreated || res.json(t)["late"] != true {
		t.Fatalf("late feedback: %d %s", res.Status, res.Body)
	}

	res = h.doJSON(http.MethodGet, "/v1/admin/feedback/overdue", h.adminTok, nil)
	var od struct {
		Overdue []map[string]any `json:"overdue"`
	}
	_ = json.Unmarshal(res.Body, &od)
	if res.Status != http.StatusOK || len(od.Overdue) != 1 || od.Overdue[0]["check_id"] != overdue["check_id"] ||
		od.Overdue[0]["working_days_overdue"].(float64) < 1 {
		t.Fatalf("overdue: %d %s", res.Status, res.Body)
	}
	problemCode(t, h.doJSON(http.MethodGet, "/v1/admin/feedback/overdue", tok, nil), http.StatusForbidden, "forbidden")

	from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	to := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	res = h.doJSON(http.MethodGet, "/v1/admin/stats?by=partner&from="+from+"&to="+to, h.adminTok, nil)
	var st struct {
		Groups []struct {
			Key              string         `json:"key"`
			Checks           int            `json:"checks"`
			Outcomes         map[string]int `json:"outcomes"`
			FeedbackExpected int            `json:"feedback_expected"`
			WithFeedback     int            `json:"with_feedback"`
			FeedbackRate     float64        `json:"feedback_rate"`
			MeasuresApplied  int            `json:"measures_applied"`
			Overdue          int            `json:"overdue"`
		} `json:"groups"`
	}
	_ = json.Unmarshal(res.Body, &st)
	if res.Status != http.StatusOK || len(st.Groups) != 1 {
		t.Fatalf("stats: %d %s", res.Status, res.Body)
	}
	g := st.Groups[0]
	if g.Key != partner || g.Checks != 3 || g.Outcomes["clear"] != 1 || g.FeedbackExpected != 2 || g.WithFeedback != 1 ||
		g.FeedbackRate != 0.5 || g.MeasuresApplied != len(applied(answered)) || g.Overdue != 1 {
		t.Fatalf("stats by partner: %+v", g)
	}
	for _, q := range []string{"by=list", "by=action&period=month", "by=region", ""} {
		res := h.doJSON(http.MethodGet, "/v1/admin/stats?from="+from+"&to="+to+"&"+q, h.adminTok, nil)
		if res.Status != http.StatusOK {
			t.Fatalf("stats %s: %d %s", q, res.Status, res.Body)
		}
	}
	problemCode(t, h.doJSON(http.MethodGet, "/v1/admin/stats?from="+to+"&to="+from, h.adminTok, nil), http.StatusBadRequest, "invalid_query")
	problemCode(t, h.doJSON(http.MethodGet, "/v1/admin/stats?by=colour&from="+from+"&to="+to, h.adminTok, nil), http.StatusBadRequest, "invalid_query")

	month := time.Now().In(time.FixedZone("CST", 8*3600)).Format("2006-01")
	res = h.doJSON(http.MethodGet, "/v1/admin/reports/monthly?month="+month, h.adminTok, nil)
	if res.Status != http.StatusOK || res.json(t)["total"].(map[string]any)["checks"].(float64) != 3 {
		t.Fatalf("monthly report: %d %s", res.Status, res.Body)
	}
	res = h.doJSON(http.MethodGet, "/v1/admin/reports/monthly?format=csv&month="+month, h.adminTok, nil)
	if res.Status != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(string(res.Body), month+",total,,3,") || !strings.Contains(string(res.Body), month+",partner,"+partner+",3,") {
		t.Fatalf("monthly csv: %d %s", res.Status, res.Body)
	}
	problemCode(t, h.doJSON(http.MethodGet, "/v1/admin/reports/monthly?month=2026-13", h.adminTok, nil), http.StatusBadRequest, "invalid_query")
	problemCode(t, h.doJSON(http.MethodGet, "/v1/admin/reports/monthly?month=2999-01", h.adminTok, nil), http.StatusBadRequest, "invalid_query")
}

func TestCoverage(t *testing.T) {
	t.Parallel()
	h, _, tok := followUpHarness(t, 0)
	listed := h.check(tok, fuListed, "government_procurement")
	h.check(tok, fuClear, "government_procurement")
	soon := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	file := "subject_id,action,approved_at,reference\n" +
		fuListed + ",government_procurement," + soon + ",许可 1\n" + // after a restrict answer, no feedback
		fuClear + ",government_procurement," + soon + ",许可 2\n" + // checked, clear
		"914403001922038217,government_procurement," + soon + ",许可 3\n" + // a bad check character
		fuClear + ",public_tendering," + soon + ",招标 4\n" + // never checked for this action
		fuClear + ",government_procurement,yesterday\n"
	run := func(token, query string) map[string]any {
		t.Helper()
		res := h.do(http.MethodPost, "/v1/coverage"+query, token, "text/csv", []byte(file))
		if res.Status != http.StatusOK {
			t.Fatalf("coverage: %d %s", res.Status, res.Body)
		}
		return res.json(t)
	}
	rep := run(tok, "")
	want := map[string]float64{"rows": 5, "checked": 2, "no_check": 1, "unexplained_approvals": 1, "invalid_rows": 2}
	for k, n := range want {
		if rep[k] != n {
			t.Fatalf("coverage %s = %v, want %v: %v", k, rep[k], n, rep)
		}
	}
	findings := fmt.Sprint(rep["findings"])
	if !strings.Contains(findings, listed["check_id"].(string)) || !strings.Contains(findings, "line:2") || strings.Contains(findings, "914403001922038217") {
		t.Fatalf("findings: %s", findings)
	}
	// With feedback that reports the approval, it is explained.
	res := h.doJSON(http.MethodPost, "/v1/checks/"+listed["check_id"].(string)+"/feedback", tok,
		feedbackBody("approved_with_conditions", applied(listed), false, nil))
	if res.Status != http.StatusCreated {
		t.Fatalf("feedback: %d %s", res.Status, res.Body)
	}
	if rep := run(tok, ""); rep["unexplained_approvals"] != 0.0 {
		t.Fatalf("explained approval still counted: %v", rep)
	}
	// Another partner's approvals are compared with its own checks only.
	_, bank := h.partner("某银行", "bank_credit")
	if rep := run(bank, "?partner=anyone"); rep["checked"] != 0.0 || rep["no_check"] != 3.0 {
		t.Fatalf("another partner sees these checks: %v", rep)
	}
	if rep := run(h.adminTok, "?window_days=1"); rep["checked"] != 2.0 || rep["record_id"] == "" {
		t.Fatalf("administrator: %v", rep)
	}
	problemCode(t, h.do(http.MethodPost, "/v1/coverage", tok, "text/csv", []byte("subject,action\n")), http.StatusBadRequest, "invalid_approvals")
	problemCode(t, h.do(http.MethodPost, "/v1/coverage?window_days=400", tok, "text/csv", []byte(file)), http.StatusBadRequest, "invalid_approvals")
	problemCode(t, h.do(http.MethodPost, "/v1/coverage?window_days=0", tok, "text/csv", []byte(file)), http.StatusBadRequest, "invalid_approvals")
	problemCode(t, h.do(http.MethodPost, "/v1/coverage", tok, "application/json", []byte(`{}`)), http.StatusUnsupportedMediaType, "unsupported_media_type")
}

func TestCommitments(t *testing.T) {
	t.Parallel()
	h, partner, tok := followUpHarness(t, 0)
	_, other := h.partner("某银行", "government_procurement")
	ans := h.check(tok, fuListed, "government_procurement")
	due := time.Now().AddDate(0, 0, 15).Format(time.DateOnly)
	// 容缺受理 is not for a listed subject (TestCommitmentEligibility); an
	// exit commitment (篇七 第五条(六)) is.
	in := map[string]any{"subject_id": fuListed, "kind": "missing_materials", "promise": "十五日内补交近三年财务审计报告",
		"due": due, "check_id": ans["check_id"]}
	problemCode(t, h.doJSON(http.MethodPost, "/v1/commitments", tok, in), http.StatusBadRequest, "invalid_commitment")
	in["kind"], in["promise"] = "exit", "履行安监部门行政指令,纠正失信行为"
	res := h.doJSON(http.MethodPost, "/v1/commitments", tok, in)
	if res.Status != http.StatusCreated {
		t.Fatalf("commitment: %d %s", res.Status, res.Body)
	}
	cm := res.json(t)
	id := cm["id"].(string)
	if cm["state"] != "open" || cm["partner"] != partner || cm["promise"] != in["promise"] || cm["receipt"] == nil {
		t.Fatalf("commitment: %s", res.Body)
	}
	for _, bad := range []map[string]any{
		{"kind": "nonsense"}, {"due": "2020-01-01"}, {"promise": ""}, {"check_id": ""}, {"subject_id": fuClear},
	} {
		b := map[string]any{}
		for k, v := range in {
			b[k] = v
		}
		for k, v := range bad {
			b[k] = v
		}
		problemCode(t, h.doJSON(http.MethodPost, "/v1/commitments", tok, b), http.StatusBadRequest, "invalid_commitment")
	}
	problemCode(t, h.doJSON(http.MethodPost, "/v1/commitments", other, in), http.StatusNotFound, "not_found")
	problemCode(t, h.doJSON(http.MethodGet, "/v1/commitments/"+id, other, nil), http.StatusNotFound, "not_found")
	problemCode(t, h.doJSON(http.MethodPost, "/v1/commitments/"+id+"/fulfil", other, nil), http.StatusNotFound, "not_found")

	var list struct {
		Commitments []map[string]any `json:"commitments"`
	}
	for _, c := range []struct {
		token, query string
		n            int
	}{{tok, "", 1}, {other, "", 0}, {h.adminTok, "?state=open", 1}, {h.adminTok, "?state=overdue", 0}} {
		res := h.doJSON(http.MethodGet, "/v1/commitments"+c.query, c.token, nil)
		_ = json.Unmarshal(res.Body, &list)
		if res.Status != http.StatusOK || len(list.Commitments) != c.n {
			t.Fatalf("list %s: %d %s, want %d", c.query, res.Status, res.Body, c.n)
		}
	}
	problemCode(t, h.doJSON(http.MethodGet, "/v1/commitments?state=late", tok, nil), http.StatusBadRequest, "invalid_query")

	// A partner's breach records no violation.
	problemCode(t, h.doJSON(http.MethodPost, "/v1/commitments/"+id+"/breach", tok, map[string]any{
		"violation": map[string]any{"item": "um-s-02", "decided_at": time.Now().UTC().Format(time.RFC3339), "department": "d", "reference": "r"}}),
		http.StatusUnprocessableEntity, "violation_not_allowed")
	res = h.doJSON(http.MethodPost, "/v1/commitments/"+id+"/fulfil", tok, map[string]any{"note": "已补交"})
	if res.Status != http.StatusOK || res.json(t)["state"] != "fulfilled" {
		t.Fatalf("fulfil: %d %s", res.Status, res.Body)
	}
	problemCode(t, h.doJSON(http.MethodPost, "/v1/commitments/"+id+"/breach", tok, nil), http.StatusConflict, "commitment_closed")

	// A repair commitment breached: the administrator records it as a
	// violation of the urban management rule set, which counts its points.
	in["kind"], in["promise"] = "repair", "纠正失信行为并消除不良影响"
	res = h.doJSON(http.MethodPost, "/v1/commitments", h.adminTok, in)
	if res.Status != http.StatusCreated {
		t.Fatalf("repair commitment: %d %s", res.Status, res.Body)
	}
	rid := res.json(t)["id"].(string)
	vi := map[string]any{"item": "um-s-02", "decided_at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339),
		"department": "深圳市南山区城市管理和综合执法局", "reference": "深南城管罚〔2026〕88号"}
	res = h.doJSON(http.MethodPost, "/v1/commitments/"+rid+"/breach", h.adminTok, map[string]any{"violation": vi})
	if res.Status != http.StatusOK {
		t.Fatalf("breach: %d %s", res.Status, res.Body)
	}
	b := res.json(t)
	if b["state"] != "breached" || b["violation"].(map[string]any)["rule_set"] != "urban_management" {
		t.Fatalf("breach: %s", res.Body)
	}
	// The breach and the violation are acts in the evidence log.
	res = h.doJSON(http.MethodGet, "/v1/admin/violations?subject_id="+fuListed, h.adminTok, nil)
	if res.Status != http.StatusOK || !strings.Contains(string(res.Body), "深南城管罚〔2026〕88号") {
		t.Fatalf("violation not recorded: %d %s", res.Status, res.Body)
	}
}
