package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/service"
)

// pendingHarness is followUpHarness with a clock of feedback and
// statistics that the test moves (*ahead, from now).
func pendingHarness(t *testing.T, ahead *atomic.Int64, more ...harnessOption) (*harness, string, string) {
	t.Helper()
	h := newHarness(t, append([]harnessOption{func(hc *harnessConfig) {
		hc.followUpNow = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	}}, more...)...)
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

type pendingPage struct {
	Pending []service.PendingView `json:"pending"`
	Next    string                `json:"next"`
}

func (h *harness) pending(tok, query string) pendingPage {
	h.t.Helper()
	res := h.doJSON(http.MethodGet, "/v1/feedback/pending"+query, tok, nil)
	var p pendingPage
	if res.Status != http.StatusOK || json.Unmarshal(res.Body, &p) != nil {
		h.t.Fatalf("pending%s: %d %s", query, res.Status, res.Body)
	}
	return p
}

func (p pendingPage) ids() []string {
	out := make([]string, len(p.Pending))
	for i, c := range p.Pending {
		out[i] = c.CheckID
	}
	return out
}

// TestPendingFeedback: a partner lists its own checks awaiting feedback —
// answers that applied measures, without feedback — with when each is
// due, before and after the deadline; not another partner's, not its
// clear ones, not those it answered. Staff list any partner's, each page
// recorded as feedback_pending_listed; a partner's listing records nothing.
func TestPendingFeedback(t *testing.T) {
	t.Parallel()
	var ahead atomic.Int64
	h, partner, tok := pendingHarness(t, &ahead)
	otherID, other := h.partner("某银行", "government_procurement")
	waiting := h.check(tok, fuListed, "government_procurement")["check_id"].(string)
	answered := h.check(tok, fuListed, "government_procurement")
	h.check(tok, fuClear, "government_procurement")
	others := h.check(other, fuListed, "government_procurement")["check_id"].(string)
	res := h.doJSON(http.MethodPost, "/v1/checks/"+answered["check_id"].(string)+"/feedback", tok,
		feedbackBody("refused", applied(answered), true, nil))
	if res.Status != http.StatusCreated {
		t.Fatalf("feedback: %d %s", res.Status, res.Body)
	}

	// Not yet due: working days are left.
	p := h.pending(tok, "")
	if !slices.Equal(p.ids(), []string{waiting}) || p.Next != "" {
		t.Fatalf("partner's pending: %+v", p)
	}
	c := p.Pending[0]
	if c.Partner != partner || c.Action != "government_procurement" || c.Outcome == "clear" || c.Overdue ||
		c.WorkingDaysLeft < 1 || c.WorkingDaysOverdue != 0 || !c.DueAt.After(c.CheckedAt) || c.DueAt.Before(time.Now()) {
		t.Fatalf("pending before its deadline: %+v", c)
	}
	// A partner sees its own only, whatever it asks for.
	if p := h.pending(tok, "?partner="+otherID); !slices.Equal(p.ids(), []string{waiting}) {
		t.Fatalf("a partner asking for another's: %v", p.ids())
	}
	if n := len(h.readActs(service.ActFeedbackPendingListed)); n != 0 {
		t.Fatalf("a partner's own listing recorded %d acts", n)
	}

	// 30 days on, it is overdue, counted as the overdue listing counts it.
	ahead.Store(int64(30 * 24 * time.Hour))
	p = h.pending(tok, "")
	if len(p.Pending) != 1 || !p.Pending[0].Overdue || p.Pending[0].WorkingDaysLeft != 0 || p.Pending[0].WorkingDaysOverdue < 1 {
		t.Fatalf("pending past its deadline: %+v", p)
	}
	res = h.doJSON(http.MethodGet, "/v1/admin/feedback/overdue?partner="+partner, h.adminTok, nil)
	var od struct {
		Overdue []map[string]any `json:"overdue"`
	}
	if json.Unmarshal(res.Body, &od) != nil || len(od.Overdue) != 1 || od.Overdue[0]["check_id"] != waiting ||
		od.Overdue[0]["working_days_overdue"].(float64) != float64(p.Pending[0].WorkingDaysOverdue) ||
		od.Overdue[0]["due_at"] != p.Pending[0].DueAt.Format(time.RFC3339Nano) {
		t.Fatalf("overdue listing %s against pending %+v", res.Body, p.Pending[0])
	}

	// Staff: one partner's, or every partner's in log order, in pages;
	// each page recorded, naming the checks shown and the route.
	aud := h.auditor()
	if p := h.pending(h.adminTok, "?partner="+partner); !slices.Equal(p.ids(), []string{waiting}) {
		t.Fatalf("admin, one partner: %v", p.ids())
	}
	all := h.pending(aud, "")
	if !slices.Equal(all.ids(), []string{waiting, others}) {
		t.Fatalf("auditor, every partner: %v", all.ids())
	}
	first := h.pending(aud, "?limit=1")
	if !slices.Equal(first.ids(), []string{waiting}) || first.Next != strconv.FormatInt(all.Pending[0].LogIndex, 10) {
		t.Fatalf("first page: %+v", first)
	}
	if p := h.pending(aud, "?limit=1&after="+first.Next); !slices.Equal(p.ids(), []string{others}) {
		t.Fatalf("second page: %v", p.ids())
	}
	acts := h.readActs(service.ActFeedbackPendingListed)
	if len(acts) != 4 {
		t.Fatalf("%d acts for 4 staff pages: %+v", len(acts), acts)
	}
	a := acts[0]
	if a.Actor == "" || a.Target != "feedback_pending" || a.Details["partner"] != partner || a.Details["via"] != "GET /v1/feedback/pending" ||
		fmt.Sprint(a.Details["check_ids"]) != "["+waiting+"]" || a.Details["actor_role"] != "admin" {
		t.Fatalf("the admin's act: %+v", a)
	}
	if a := acts[1]; a.Details["partner"] != "" || fmt.Sprint(a.Details["check_ids"]) != "["+waiting+" "+others+"]" || a.Details["actor_role"] != "auditor" {
		t.Fatalf("the auditor's act: %+v", a)
	}
	if a := acts[3]; a.Details["after"] != float64(all.Pending[0].LogIndex) || fmt.Sprint(a.Details["check_ids"]) != "["+others+"]" {
		t.Fatalf("the second page's act: %+v", a)
	}
	for _, q := range []string{"?limit=0", "?after=x"} {
		problemCode(t, h.doJSON(http.MethodGet, "/v1/feedback/pending"+q, tok, nil), http.StatusBadRequest, "invalid_query")
	}

	// Feedback now, past the deadline: the check leaves the list, and the
	// statistics count it late (the one given in time is not).
	res = h.doJSON(http.MethodPost, "/v1/checks/"+waiting+"/feedback", tok,
		feedbackBody("refused", applied(answered), true, nil))
	if res.Status != http.StatusCreated || res.json(t)["late"] != true {
		t.Fatalf("late feedback: %d %s", res.Status, res.Body)
	}
	if p := h.pending(tok, ""); len(p.Pending) != 0 {
		t.Fatalf("pending after feedback: %+v", p)
	}
	from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	to := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	res = h.doJSON(http.MethodGet, "/v1/admin/stats?by=partner&partner="+partner+"&from="+from+"&to="+to, h.adminTok, nil)
	var st struct {
		Groups []map[string]any `json:"groups"`
	}
	if json.Unmarshal(res.Body, &st) != nil || len(st.Groups) != 1 || st.Groups[0]["with_feedback"] != 2.0 || st.Groups[0]["feedback_late"] != 1.0 {
		t.Fatalf("stats: %d %s", res.Status, res.Body)
	}
	month := time.Now().In(time.FixedZone("CST", 8*3600)).Format("2006-01")
	csv := h.doJSON(http.MethodGet, "/v1/admin/reports/monthly?format=csv&month="+month, h.adminTok, nil)
	lines := strings.Split(string(csv.Body), "\n")
	if csv.Status != http.StatusOK || !strings.Contains(lines[0], ",with_feedback,feedback_rate,feedback_late,measures_applied,") ||
		!strings.Contains(string(csv.Body), month+",partner,"+partner+",3,") {
		t.Fatalf("monthly csv: %d %s", csv.Status, csv.Body)
	}
	head := strings.Split(lines[0], ",")
	for _, l := range lines[1:] {
		if row := strings.Split(l, ","); len(row) == len(head) && row[1] == "partner" && row[2] == partner {
			if late := row[slices.Index(head, "feedback_late")]; late != "1" {
				t.Fatalf("the partner's feedback_late in the csv: %s (%s)", late, l)
			}
		}
	}
}

// TestPendingFeedbackFailsClosed: a staff page of pending feedback whose
// act cannot be recorded is not answered (503 audit_unavailable, no check
// id leaves); a partner's own listing, which records nothing, is.
func TestPendingFeedbackFailsClosed(t *testing.T) {
	t.Parallel()
	var ahead atomic.Int64
	var down atomic.Bool
	h, _, tok := pendingHarness(t, &ahead, func(hc *harnessConfig) {
		hc.wrap = func(st service.Store) service.Store { return adminCommitsFail{Store: st, down: &down} }
	})
	checkID := h.check(tok, fuListed, "government_procurement")["check_id"].(string)
	aud := h.auditor()
	down.Store(true)
	for _, who := range []string{h.adminTok, aud} {
		res := h.doJSON(http.MethodGet, "/v1/feedback/pending", who, nil)
		problemCode(t, res, http.StatusServiceUnavailable, "audit_unavailable")
		if strings.Contains(string(res.Body), checkID) {
			t.Fatalf("the refusal shows the check: %s", res.Body)
		}
	}
	if p := h.pending(tok, ""); !slices.Equal(p.ids(), []string{checkID}) {
		t.Fatalf("partner's own listing with acts failing: %v", p.ids())
	}
	down.Store(false)
	if p := h.pending(aud, ""); !slices.Equal(p.ids(), []string{checkID}) {
		t.Fatalf("auditor once the log is back: %v", p.ids())
	}
}
