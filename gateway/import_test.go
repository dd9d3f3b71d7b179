package gateway_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/credgate/credgate/internal/testenv"
)

func TestImportAllOrNothing(t *testing.T) {
	h := newHarness(t)
	a := testenv.USCC(t, "91110000MA00MPRA0")
	b := testenv.USCC(t, "91110000MA00MPRB0")
	header := "subject_id,list,originating_department,reason,legal_basis,decided_at,published_at,responsible_persons\n"
	good := fmt.Sprintf("%s,safety_production_blacklist,应急管理部,重大事故,《安全生产法》,2026-01-01,2026-01-02,legal_representative:11010519491231002X\n", a)
	bad := fmt.Sprintf("%s,safety_production_blacklist,应急管理部,重大事故,《安全生产法》,2026-01-01,2026-01-02,\n", wrongCheck(b)) +
		fmt.Sprintf("%s,no_such_list,应急管理部,重大事故,《安全生产法》,2026-01-01,2026-01-02,\n", b)

	// One bad line rejects the whole file, and every bad line is reported.
	res := h.do(http.MethodPost, "/v1/admin/entries:import", h.adminTok, "text/csv", []byte(header+good+bad))
	p := problemCode(t, res, http.StatusUnprocessableEntity, "import_rejected")
	lines := p["errors"].([]any)
	if len(lines) != 2 || lines[0].(map[string]any)["line"].(float64) != 3 || lines[1].(map[string]any)["line"].(float64) != 4 {
		t.Fatalf("reported lines: %v", lines)
	}
	for _, s := range []string{a, b} {
		res := h.doJSON(http.MethodGet, "/v1/admin/entries?subject_id="+s, h.adminTok, nil)
		if n := len(res.json(t)["entries"].([]any)); n != 0 {
			t.Fatalf("a rejected import left %d entries for %s", n, s)
		}
	}

	// The good file goes in whole; its responsible person is reached.
	res = h.do(http.MethodPost, "/v1/admin/entries:import", h.adminTok, "text/csv", []byte(header+good))
	if res.Status != http.StatusCreated || res.json(t)["imported"].(float64) != 1 {
		t.Fatalf("import: %d %s", res.Status, res.Body)
	}
	nd := fmt.Sprintf(`{"subject_id":%q,"list":"court_dishonest_debtor","originating_department":"某人民法院","reason":"有履行能力而拒不履行","legal_basis":"《民事诉讼法》","decided_at":"2026-01-01T00:00:00Z","published_at":"2026-01-02T00:00:00Z"}`, b)
	res = h.do(http.MethodPost, "/v1/admin/entries:import", h.adminTok, "application/x-ndjson", []byte(nd+"\n"))
	if res.Status != http.StatusCreated {
		t.Fatalf("ndjson import: %d %s", res.Status, res.Body)
	}
	res = h.doJSON(http.MethodPost, "/v1/checks", h.adminTok, map[string]any{"subject": map[string]string{"id": "11010519491231002X"}, "action": "executive_appointment"})
	ans := res.json(t)
	if len(ans["entries"].([]any)) != 1 {
		t.Fatalf("the legal representative is not reached: %s", res.Body)
	}
	via := ans["entries"].([]any)[0].(map[string]any)["via"].(map[string]any)
	if via["organization"] != a || via["role"] != "legal_representative" {
		t.Fatalf("via %v", via)
	}

	problemCode(t, h.do(http.MethodPost, "/v1/admin/entries:import", h.adminTok, "application/json", []byte("{}")),
		http.StatusUnsupportedMediaType, "unsupported_media_type")
	problemCode(t, h.do(http.MethodPost, "/v1/admin/entries:import", h.adminTok, "text/csv", []byte(strings.Repeat("x", 10))),
		http.StatusUnprocessableEntity, "import_rejected")
}

// TestImportLinesAsStrictAsBodies: an import line is refused as the same
// entry sent alone would be, with that problem's code, and a file in
// another encoding than UTF-8 is refused whole; nothing is stored.
func TestImportLinesAsStrictAsBodies(t *testing.T) {
	h := newHarness(t)
	a := testenv.USCC(t, "91110000MA00MPRA0")
	b := testenv.USCC(t, "91110000MA00MPRB0")
	nd := func(subject, extra string) string {
		return fmt.Sprintf(`{"subject_id":%q,"list":"court_dishonest_debtor","originating_department":"某人民法院","reason":"有履行能力而拒不履行","legal_basis":"《民事诉讼法》","decided_at":"2026-01-01T00:00:00Z","published_at":"2026-01-02T00:00:00Z"%s}`+"\n", subject, extra)
	}
	header := "subject_id,list,originating_department,reason,legal_basis,decided_at,published_at\n"
	row := func(subject, reason string) string {
		return fmt.Sprintf("%s,safety_production_blacklist,应急管理部,%s,《安全生产法》,2026-01-01,2026-01-02\n", subject, reason)
	}
	const gbk = "\xd6\xd8\xb4\xf3\xca\xc2\xb9\xca" // 重大事故 in GBK
	stored := func() int {
		n := 0
		for _, s := range []string{a, b} {
			res := h.doJSON(http.MethodGet, "/v1/admin/entries?subject_id="+s, h.adminTok, nil)
			n += len(res.json(t)["entries"].([]any))
		}
		return n
	}
	for _, tc := range []struct {
		name, contentType, body string
		line                    float64
		code                    string
	}{
		{"key twice", "application/x-ndjson", nd(a, "") + nd(b, fmt.Sprintf(`,"subject_id":%q`, a)), 2, "duplicate_field"},
		{"key in another case", "application/x-ndjson", nd(a, "") + strings.Replace(nd(b, ""), `"subject_id"`, `"Subject_ID"`, 1), 2, "invalid_json"},
		{"not utf-8", "application/x-ndjson", nd(a, "") + nd(b, `,"evidence_refs":["UTF`+"\xff"+`"]`), 2, "invalid_utf8"},
		{"lone surrogate", "application/x-ndjson", nd(a, "") + nd(b, `,"evidence_refs":["\ud800"]`), 2, "invalid_utf8"},
		{"malformed", "application/x-ndjson", nd(a, "") + "{\n", 2, "invalid_json"},
		{"line too long", "application/x-ndjson", nd(a, "") + nd(b, `,"evidence_refs":["`+strings.Repeat("x", 64<<10)+`"]`), 2, "body_too_large"},
		{"csv in gbk", "text/csv", header + row(a, "重大事故") + row(b, gbk), 3, "invalid_utf8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := h.do(http.MethodPost, "/v1/admin/entries:import", h.adminTok, tc.contentType, []byte(tc.body))
			p := problemCode(t, res, http.StatusUnprocessableEntity, "import_rejected")
			lines := p["errors"].([]any)
			if len(lines) != 1 {
				t.Fatalf("errors %v", lines)
			}
			if l := lines[0].(map[string]any); l["line"] != tc.line || l["code"] != tc.code {
				t.Fatalf("error %v, want line %v code %s", l, tc.line, tc.code)
			}
			if n := stored(); n != 0 {
				t.Fatalf("a refused import stored %d entries", n)
			}
		})
	}

	// A charset other than UTF-8's is refused whole, before any line.
	for _, ct := range []string{"text/csv; charset=gbk", "text/csv; charset=GB18030", "application/x-ndjson; charset=utf-16"} {
		problemCode(t, h.do(http.MethodPost, "/v1/admin/entries:import", h.adminTok, ct, []byte(header+row(a, "重大事故"))),
			http.StatusUnsupportedMediaType, "unsupported_media_type")
	}
	if n := stored(); n != 0 {
		t.Fatalf("a refused import stored %d entries", n)
	}
	// UTF-8 by name, in any case, and with Excel's byte order mark, goes in.
	res := h.do(http.MethodPost, "/v1/admin/entries:import", h.adminTok, "text/csv; charset=UTF-8", []byte("\ufeff"+header+row(a, "重大事故")))
	if res.Status != http.StatusCreated {
		t.Fatalf("UTF-8 CSV: %d %s", res.Status, res.Body)
	}
	if n := stored(); n != 1 {
		t.Fatalf("%d entries stored, want 1", n)
	}
}
