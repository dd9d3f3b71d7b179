package gateway_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/service"
)

// TestFollowUpListsRecorded: an administrator's or auditor's page of
// partners' feedback, of overdue feedback (which names subjects) and of
// commitments is recorded as one act per request, naming the records
// shown, the filter and the route; a partner's listing of its own records
// nothing. With acts failing, such a page is 503 audit_unavailable and
// shows nothing, while the partner's own listing is answered.
func TestFollowUpListsRecorded(t *testing.T) {
	t.Parallel()
	var ahead atomic.Int64
	var down atomic.Bool
	h, partner, tok := pendingHarness(t, &ahead, func(hc *harnessConfig) {
		hc.wrap = func(st service.Store) service.Store { return adminCommitsFail{Store: st, down: &down} }
	})
	answered := h.check(tok, fuListed, "government_procurement")
	overdue := h.check(tok, fuListed, "government_procurement")["check_id"].(string)
	res := h.doJSON(http.MethodPost, "/v1/checks/"+answered["check_id"].(string)+"/feedback", tok,
		feedbackBody("refused", applied(answered), true, nil))
	if res.Status != http.StatusCreated {
		t.Fatalf("feedback: %d %s", res.Status, res.Body)
	}
	feedbackID := res.json(t)["feedback_id"].(string)
	res = h.doJSON(http.MethodPost, "/v1/commitments", tok, map[string]any{"subject_id": fuListed, "kind": "exit",
		"promise": "履行安监部门行政指令,纠正失信行为", "due": time.Now().AddDate(0, 0, 15).Format(time.DateOnly), "check_id": answered["check_id"]})
	if res.Status != http.StatusCreated {
		t.Fatalf("commitment: %d %s", res.Status, res.Body)
	}
	commitmentID := res.json(t)["id"].(string)
	ahead.Store(int64(30 * 24 * time.Hour))
	aud := h.auditor()

	lists := []struct {
		path   string
		act    service.Act
		target string
		ids    string // the details member naming what was shown
		want   string
	}{
		{"/v1/feedback?partner=" + partner, service.ActFeedbackListed, "feedback", "feedback_ids", feedbackID},
		{"/v1/admin/feedback/overdue?partner=" + partner, service.ActFeedbackOverdueListed, "feedback_overdue", "check_ids", overdue},
		{"/v1/commitments?" + url.Values{"subject_id": {fuListed}, "partner": {partner}}.Encode(), service.ActCommitmentsListed, "commitments",
			"commitment_ids", commitmentID},
	}
	for _, l := range lists {
		for _, who := range []string{h.adminTok, aud} {
			if res := h.doJSON(http.MethodGet, l.path, who, nil); res.Status != http.StatusOK || !strings.Contains(string(res.Body), l.want) {
				t.Fatalf("%s: %d %s", l.path, res.Status, res.Body)
			}
		}
		acts := h.readActs(l.act)
		if len(acts) != 2 {
			t.Fatalf("%s: %d acts for 2 staff pages: %+v", l.path, len(acts), acts)
		}
		route, _, _ := strings.Cut(l.path, "?")
		for i, role := range []string{"admin", "auditor"} {
			a := acts[i]
			if a.Target != l.target || a.Details["actor_role"] != role || a.Details["partner"] != partner ||
				a.Details["via"] != "GET "+route || fmt.Sprint(a.Details[l.ids]) != "["+l.want+"]" || a.Details["count"] != 1.0 {
				t.Fatalf("%s: act %+v", l.path, a)
			}
		}
		if l.act == service.ActCommitmentsListed && acts[0].Details["subject_id"] != fuListed {
			t.Fatalf("a commitments lookup by subject does not name it: %+v", acts[0])
		}
	}
	// A partner's own listings record nothing.
	for _, path := range []string{"/v1/feedback", "/v1/commitments"} {
		if res := h.doJSON(http.MethodGet, path, tok, nil); res.Status != http.StatusOK {
			t.Fatalf("partner %s: %d %s", path, res.Status, res.Body)
		}
	}
	for _, l := range lists {
		if n := len(h.readActs(l.act)); n != 2 {
			t.Fatalf("%s: %d acts after the partner's own listings", l.act, n)
		}
	}

	down.Store(true)
	for _, l := range lists {
		for _, who := range []string{h.adminTok, aud} {
			res := h.doJSON(http.MethodGet, l.path, who, nil)
			problemCode(t, res, http.StatusServiceUnavailable, "audit_unavailable")
			if strings.Contains(string(res.Body), l.want) || strings.Contains(string(res.Body), fuListed) {
				t.Fatalf("%s: the refusal shows what was asked for: %s", l.path, res.Body)
			}
		}
	}
	for _, path := range []string{"/v1/feedback", "/v1/commitments"} {
		if res := h.doJSON(http.MethodGet, path, tok, nil); res.Status != http.StatusOK {
			t.Fatalf("partner %s with acts failing: %d %s", path, res.Status, res.Body)
		}
	}
}

// TestCheckFeedbackReadRecorded: an administrator's or auditor's read of
// the feedback on a partner's check (which names the check's subject's
// treatment) is one act per request, check_feedback_read, naming the
// check, its partner and the feedback shown; the partner's own read
// records nothing; with acts failing the staff read is 503
// audit_unavailable and shows nothing.
func TestCheckFeedbackReadRecorded(t *testing.T) {
	t.Parallel()
	var ahead atomic.Int64
	var down atomic.Bool
	h, partner, tok := pendingHarness(t, &ahead, func(hc *harnessConfig) {
		hc.wrap = func(st service.Store) service.Store { return adminCommitsFail{Store: st, down: &down} }
	})
	checkID := h.check(tok, fuListed, "government_procurement")["check_id"].(string)
	ans := h.doJSON(http.MethodGet, "/v1/checks/"+checkID, tok, nil).json(t)
	res := h.doJSON(http.MethodPost, "/v1/checks/"+checkID+"/feedback", tok, feedbackBody("refused", applied(ans), true, nil))
	if res.Status != http.StatusCreated {
		t.Fatalf("feedback: %d %s", res.Status, res.Body)
	}
	feedbackID := res.json(t)["feedback_id"].(string)
	path := "/v1/checks/" + checkID + "/feedback"
	if res := h.doJSON(http.MethodGet, path, tok, nil); res.Status != http.StatusOK || !strings.Contains(string(res.Body), feedbackID) {
		t.Fatalf("partner's own read: %d %s", res.Status, res.Body)
	}
	if n := len(h.readActs(service.ActCheckFeedbackRead)); n != 0 {
		t.Fatalf("the partner's own read recorded %d acts", n)
	}
	aud := h.auditor()
	for _, who := range []string{h.adminTok, aud} {
		if res := h.doJSON(http.MethodGet, path, who, nil); res.Status != http.StatusOK || !strings.Contains(string(res.Body), feedbackID) {
			t.Fatalf("staff read: %d %s", res.Status, res.Body)
		}
	}
	acts := h.readActs(service.ActCheckFeedbackRead)
	if len(acts) != 2 {
		t.Fatalf("%d acts for 2 staff reads: %+v", len(acts), acts)
	}
	for i, role := range []string{"admin", "auditor"} {
		if a := acts[i]; a.Target != checkID || a.Details["actor_role"] != role || a.Details["partner"] != partner ||
			a.Details["via"] != "GET /v1/checks/:id/feedback" || fmt.Sprint(a.Details["feedback_ids"]) != "["+feedbackID+"]" {
			t.Fatalf("act %+v", a)
		}
	}
	down.Store(true)
	for _, who := range []string{h.adminTok, aud} {
		res := h.doJSON(http.MethodGet, path, who, nil)
		problemCode(t, res, http.StatusServiceUnavailable, "audit_unavailable")
		if strings.Contains(string(res.Body), feedbackID) {
			t.Fatalf("the refusal shows the feedback: %s", res.Body)
		}
	}
	if res := h.doJSON(http.MethodGet, path, tok, nil); res.Status != http.StatusOK {
		t.Fatalf("partner's own read with acts failing: %d %s", res.Status, res.Body)
	}
}
