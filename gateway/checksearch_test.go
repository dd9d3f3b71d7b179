package gateway_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCheckSearch: GET /v1/admin/checks finds checks by partner, action,
// outcome and period for administrators and auditors, newest first in
// pages, without the subjects' ID numbers; partners are refused.
func TestCheckSearch(t *testing.T) {
	t.Parallel()
	h, bankID, bank := followUpHarness(t, 0)
	h.doJSON(http.MethodPatch, "/v1/admin/partners/"+bankID, h.adminTok, map[string]any{"actions": []string{"government_procurement", "bank_credit"}})
	otherID, other := h.partner("某银行", "bank_credit")
	var want []string // newest first
	for _, c := range []struct{ tok, subject, action string }{
		{bank, fuListed, "government_procurement"},
		{bank, fuClear, "government_procurement"},
		{other, fuListed, "bank_credit"},
		{bank, fuClear, "government_procurement"},
	} {
		want = append([]string{h.check(c.tok, c.subject, c.action)["check_id"].(string)}, want...)
	}
	aud := h.auditor()

	search := func(tok string, q url.Values) map[string]any {
		t.Helper()
		res := h.doJSON(http.MethodGet, "/v1/admin/checks?"+q.Encode(), tok, nil)
		if res.Status != http.StatusOK {
			t.Fatalf("search %s: %d %s", q.Encode(), res.Status, res.Body)
		}
		for _, id := range []string{fuListed, fuClear} {
			if strings.Contains(string(res.Body), id) {
				t.Fatalf("search %s answers a subject's ID number: %s", q.Encode(), res.Body)
			}
		}
		return res.json(t)
	}
	ids := func(page map[string]any) []string {
		var out []string
		for _, c := range page["checks"].([]any) {
			out = append(out, c.(map[string]any)["check_id"].(string))
		}
		return out
	}

	// Every check of the last 30 days (the default period), by an auditor
	// and by the administrator, in pages of 3 and 1.
	for _, tok := range []string{aud, h.adminTok} {
		first := search(tok, url.Values{"limit": {"3"}})
		if got := ids(first); !slices.Equal(got, want[:3]) || first["next"] == nil {
			t.Fatalf("first page %v (next %v), want %v", got, first["next"], want[:3])
		}
		c := first["checks"].([]any)[0].(map[string]any)
		if c["partner"] != bankID || c["action"] != "government_procurement" || c["outcome"] != "clear" || c["log_index"] == nil || c["checked_at"] == nil {
			t.Fatalf("item %v", c)
		}
		if _, ok := c["subject"]; ok {
			t.Fatalf("item with a subject: %v", c)
		}
		from, _ := time.Parse(time.RFC3339Nano, first["from"].(string))
		to, _ := time.Parse(time.RFC3339Nano, first["to"].(string))
		if d := to.Sub(from); d != 30*24*time.Hour {
			t.Fatalf("default period %v..%v", from, to)
		}
		second := search(tok, url.Values{"limit": {"3"}, "after": {first["next"].(string)}})
		if got := ids(second); !slices.Equal(got, want[3:]) || second["next"] != nil {
			t.Fatalf("second page %v (next %v), want %v", got, second["next"], want[3:])
		}
	}
	var paged []string
	q := url.Values{"limit": {"1"}}
	for range 10 {
		page := search(aud, q)
		paged = append(paged, ids(page)...)
		next, ok := page["next"].(string)
		if !ok {
			break
		}
		q.Set("after", next)
	}
	if !slices.Equal(paged, want) {
		t.Fatalf("pages of one: %v, want %v", paged, want)
	}

	// Filters.
	now := time.Now().UTC()
	for _, tc := range []struct {
		q    url.Values
		want []string
	}{
		{url.Values{"partner": {otherID}}, []string{want[1]}},
		{url.Values{"action": {"government_procurement"}}, []string{want[0], want[2], want[3]}},
		{url.Values{"partner": {bankID}, "outcome": {"clear"}}, []string{want[0], want[2]}},
		{url.Values{"outcome": {"prohibit"}, "action": {"bank_credit"}}, nil},
		{url.Values{"from": {now.Add(-time.Hour).Format(time.RFC3339)}, "to": {now.Add(time.Hour).Format(time.RFC3339)}}, want},
		{url.Values{"from": {now.Add(-48 * time.Hour).Format(time.RFC3339)}, "to": {now.Add(-24 * time.Hour).Format(time.RFC3339)}}, nil},
		{url.Values{"partner": {"no-such-partner"}}, nil},
	} {
		if got := ids(search(aud, tc.q)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.q.Encode(), got, tc.want)
		}
	}
	// Half-open: a period ending at a check's time leaves it out, one
	// starting there keeps it.
	first := search(aud, url.Values{"limit": {"1"}})["checks"].([]any)[0].(map[string]any)
	at := first["checked_at"].(string)
	if got := ids(search(aud, url.Values{"to": {at}})); slices.Contains(got, want[0]) {
		t.Errorf("to=%s includes the check at %s", at, at)
	}
	if got := ids(search(aud, url.Values{"from": {at}})); !slices.Contains(got, want[0]) {
		t.Errorf("from=%s leaves out the check at %s", at, at)
	}

	// Partners are refused, their own checks or not.
	problemCode(t, h.doJSON(http.MethodGet, "/v1/admin/checks", bank, nil), http.StatusForbidden, "forbidden")
	problemCode(t, h.doJSON(http.MethodGet, "/v1/admin/checks?partner="+bankID, bank, nil), http.StatusForbidden, "forbidden")

	// Bad filters: 400 invalid_query naming the parameter.
	for q, field := range map[string]string{
		"from=yesterday":  "from",
		"to=2026-03-01":   "to",
		"outcome=denied":  "outcome",
		"limit=0":         "limit",
		"limit=1001":      "limit",
		"limit=x":         "limit",
		"after=nonsense!": "after",
		"after=MTIz":      "after",
		"from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z": "from",
		"from=2025-01-01T00:00:00Z&to=2026-03-01T00:00:00Z": "from",
	} {
		p := problemCode(t, h.doJSON(http.MethodGet, "/v1/admin/checks?"+q, aud, nil), http.StatusBadRequest, "invalid_query")
		if p["field"] != field {
			t.Errorf("%s: field %v, want %s", q, p["field"], field)
		}
	}

	// Each answer is recorded as an act, with its filter.
	res := h.doJSON(http.MethodGet, "/v1/admin/acts?limit=1000", aud, nil)
	if res.Status != http.StatusOK || !strings.Contains(string(res.Body), `"checks_searched"`) ||
		!strings.Contains(string(res.Body), `"partner":"`+otherID+`"`) {
		t.Fatalf("acts: %d %s", res.Status, res.Body)
	}
}
