package gateway_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/adapters/postgres"
	"github.com/credgate/credgate/gateway"
	"github.com/credgate/credgate/internal/testenv"
)

// onSQLiteAndPostgres runs test over a harness on SQLite and one on PostgreSQL:
// the same request must get the same answer whichever store is behind.
// Each harness gets its own options from opts (a rate limiter's counters
// are not shared between the two).
func onSQLiteAndPostgres(t *testing.T, test func(t *testing.T, h *harness), opts ...func(t *testing.T) harnessOption) {
	build := func(t *testing.T) []harnessOption {
		var out []harnessOption
		for _, o := range opts {
			out = append(out, o(t))
		}
		return out
	}
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		test(t, newHarness(t, build(t)...))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		st, err := postgres.Open(t.Context(), testenv.FreshDatabase(t, "credgate_plaintext"))
		if err != nil {
			t.Fatal(err)
		}
		test(t, newHarness(t, append(build(t), func(c *harnessConfig) { c.store = st })...))
	})
}

// TestBodiesWithControlCharactersRefused: text PostgreSQL cannot store
// (U+0000) and the other control characters no text field has a use for
// are refused at the edge, 400 control_character naming the field, with
// nothing written, on both stores. Before, SQLite stored the NUL (201) and
// PostgreSQL failed (500), or failed the group commit of every record
// beside it.
func TestBodiesWithControlCharactersRefused(t *testing.T) {
	onSQLiteAndPostgres(t, func(t *testing.T, h *harness) {
		subject := testenv.USCC(t, "91440300MA5H00001")
		_, tok := h.partner("控制字符", "government_procurement")

		// A check whose reference holds NUL is refused, no record made.
		body := `{"subject":{"id":"` + subject + `"},"action":"government_procurement","reference":"采购\u0000项目"}`
		m := problemCode(t, h.do(http.MethodPost, "/v1/checks", tok, "application/json", []byte(body)), http.StatusBadRequest, "control_character")
		if m["field"] != "reference" {
			t.Errorf("field %v, want reference", m["field"])
		}
		body = `{"action":"government_procurement","reference":"x\u0000","subjects":[{"id":"` + subject + `"}]}`
		problemCode(t, h.do(http.MethodPost, "/v1/checks:batch", tok, "application/json", []byte(body)), http.StatusBadRequest, "control_character")

		// An entry's free text, created or patched.
		for field, v := range map[string]any{
			"reason":                 "发生\u0000事故",
			"originating_department": "应急\u001b[2J管理部",
			"evidence_refs":          []string{"应急罚\u0000〔2026〕12号"},
			"legal_basis":            "《安全生产法》\f",
		} {
			e := blackEntry(subject)
			e[field] = v
			m := problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/entries", h.adminTok, e), http.StatusBadRequest, "control_character")
			if f, _ := m["field"].(string); !strings.HasPrefix(f, field) {
				t.Errorf("%s: field %q", field, f)
			}
		}
		res := h.doJSON(http.MethodGet, "/v1/admin/entries", h.adminTok, nil)
		if entries, _ := res.json(t)["entries"].([]any); res.Status != http.StatusOK || len(entries) != 0 {
			t.Fatalf("a refused entry was written: %d %s", res.Status, res.Body)
		}
		res = h.doJSON(http.MethodPost, "/v1/admin/entries", h.adminTok, blackEntry(subject))
		if res.Status != http.StatusCreated {
			t.Fatalf("create entry: %d %s", res.Status, res.Body)
		}
		id := res.json(t)["id"].(string)
		problemCode(t, h.doJSON(http.MethodPatch, "/v1/admin/entries/"+id, h.adminTok, map[string]any{"reason": "更正\u0000"}),
			http.StatusBadRequest, "control_character")
		problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/entries/"+id+":revoke", h.adminTok, map[string]any{"reason": "撤销\u0000"}),
			http.StatusBadRequest, "control_character")
		problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/partners", h.adminTok, map[string]any{"name": "伙伴\u0000", "actions": []string{"bank_credit"}}),
			http.StatusBadRequest, "control_character")
		problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/entries/"+id+"/objections", h.adminTok,
			map[string]any{"filed_by": "subject", "grounds": "理由\u0000"}), http.StatusBadRequest, "control_character")

		// An NDJSON import line is refused as the entry alone would be.
		line := func(subject, reason string) string {
			return `{"subject_id":"` + subject + `","list":"court_dishonest_debtor","originating_department":"某人民法院","reason":"` + reason +
				`","legal_basis":"《民事诉讼法》","decided_at":"2026-01-01T00:00:00Z","published_at":"2026-01-02T00:00:00Z"}` + "\n"
		}
		other := testenv.USCC(t, "91440300MA5H00004")
		res = h.do(http.MethodPost, "/v1/admin/entries:import", h.adminTok, "application/x-ndjson",
			[]byte(line(other, "拒不履行")+line(testenv.USCC(t, "91440300MA5H00005"), `理由\u0000`)))
		lines, _ := problemCode(t, res, http.StatusUnprocessableEntity, "import_rejected")["errors"].([]any)
		if l, _ := lines[0].(map[string]any); len(lines) != 1 || l["line"] != 2.0 || l["code"] != "control_character" {
			t.Fatalf("import line errors %v", lines)
		}
		res = h.doJSON(http.MethodGet, "/v1/admin/entries?subject_id="+other, h.adminTok, nil)
		if entries, _ := res.json(t)["entries"].([]any); len(entries) != 0 {
			t.Fatalf("a refused import stored %d entries", len(entries))
		}

		// Line breaks and tabs are text.
		e := blackEntry(testenv.USCC(t, "91440300MA5H00002"))
		e["reason"] = "第一行\r\n第二行\t制表"
		if res := h.doJSON(http.MethodPost, "/v1/admin/entries", h.adminTok, e); res.Status != http.StatusCreated {
			t.Fatalf("an entry with line breaks and a tab: %d %s", res.Status, res.Body)
		}
		// The entry is unchanged by the refused patch and revocation.
		res = h.doJSON(http.MethodGet, "/v1/admin/entries/"+id, h.adminTok, nil)
		if m := res.json(t); res.Status != http.StatusOK || m["reason"] != blackEntry(subject)["reason"] || m["state"] == "revoked" {
			t.Fatalf("entry after refused changes: %d %s", res.Status, res.Body)
		}
	})
}

// TestUnplainParametersRefused: an id in the path that is not UTF-8, or
// holds NUL, names nothing (404); such a query parameter is 400
// invalid_query; such a subject identifier is 400 invalid_subject_id. On
// PostgreSQL each was a 500 (SQLSTATE 22021) where SQLite answered 404 or
// an empty page.
func TestUnplainParametersRefused(t *testing.T) {
	onSQLiteAndPostgres(t, func(t *testing.T, h *harness) {
		_, tok := h.partner("参数", "government_procurement")
		for _, bad := range []string{"%FF", "%00", "a%00b", "%C0%AF"} {
			for _, p := range []struct{ method, path, token string }{
				{http.MethodGet, "/v1/admin/entries/" + bad, h.adminTok},
				{http.MethodPatch, "/v1/admin/entries/" + bad, h.adminTok},
				{http.MethodGet, "/v1/checks/" + bad, h.adminTok},
				{http.MethodGet, "/v1/evidence/receipts/" + bad, h.adminTok},
				{http.MethodGet, "/v1/commitments/" + bad, tok},
				{http.MethodPost, "/v1/commitments/" + bad + "/fulfil", tok},
				{http.MethodGet, "/v1/admin/partners/" + bad, h.adminTok},
				{http.MethodPost, "/v1/admin/objections/" + bad + "/decision", h.adminTok},
				{http.MethodGet, "/v1/checks/" + bad + "/feedback", tok},
			} {
				var body any
				if p.method != http.MethodGet {
					body = map[string]any{"note": "x"}
				}
				res := h.doJSON(p.method, p.path, p.token, body)
				if res.Status != http.StatusNotFound {
					t.Errorf("%s %s: %d %s, want 404", p.method, p.path, res.Status, res.Body)
				}
			}
			for _, q := range []struct{ path, param, token string }{
				{"/v1/admin/entries?list=", "list", h.adminTok},
				{"/v1/admin/entries?subject_id=", "subject_id", h.adminTok},
				{"/v1/admin/entries?after=", "after", h.adminTok},
				{"/v1/admin/partners?after=", "after", h.adminTok},
				{"/v1/admin/objections?state=open&after=", "after", h.adminTok},
				{"/v1/admin/acts?after=", "after", h.adminTok},
				{"/v1/commitments?after=", "after", tok},
				{"/v1/feedback?after=", "after", tok},
			} {
				m := problemCode(t, h.doJSON(http.MethodGet, q.path+bad, q.token, nil), http.StatusBadRequest, "invalid_query")
				if m["field"] != q.param {
					t.Errorf("%s%s: field %v", q.path, bad, m["field"])
				}
			}
			m := problemCode(t, h.doJSON(http.MethodGet, "/v1/subjects/"+bad+"/status", h.adminTok, nil), http.StatusBadRequest, "invalid_subject_id")
			if m["reason"] != "charset" {
				t.Errorf("subject %s: %v", bad, m)
			}
		}
		// Text passes: the same lookups answer as before.
		problemCode(t, h.doJSON(http.MethodGet, "/v1/admin/entries/nonexistent", h.adminTok, nil), http.StatusNotFound, "not_found")
		if res := h.doJSON(http.MethodGet, "/v1/admin/entries?list=safety_production_blacklist&after=x", h.adminTok, nil); res.Status != http.StatusOK {
			t.Fatalf("plain filters: %d %s", res.Status, res.Body)
		}
	})
}

// TestTokenRefusesUnplainClientIDs: a client id that is not UTF-8 or holds
// NUL, by form or Basic, is a wrong credential (401 invalid_client),
// counted against the address like one. On PostgreSQL it was a 500 that
// gave its unit of the failure allowance back.
func TestTokenRefusesUnplainClientIDs(t *testing.T) {
	onSQLiteAndPostgres(t, func(t *testing.T, h *harness) {
		const attacker = "203.0.113.9:4000"
		for _, id := range []string{"\xff", "a\x00b", "cg_\xc0\xaf"} {
			problemCode(t, h.tokenForm(attacker, secretForm(id, "secret-0123456789abcdef")), http.StatusUnauthorized, "invalid_client")
			form := url.Values{"grant_type": {"client_credentials"}}
			res := h.doFrom(attacker, http.MethodPost, "/v1/oauth/token", "", "application/x-www-form-urlencoded",
				[]byte(form.Encode()), id, "secret-0123456789abcdef")
			problemCode(t, res, http.StatusUnauthorized, "invalid_client")
		}
		// Six failures, the address's whole allowance: it is throttled, even
		// with the right secret.
		problemCode(t, h.tokenForm(attacker, secretForm(adminID, adminSecret)), http.StatusTooManyRequests, "rate_limited")
	}, func(t *testing.T) harnessOption {
		return withLimiter(t, gateway.DefaultRateLimit, gateway.WithAuthFailureLimits("6-M", "60-M"))
	})
}

// Commitments' notes and lifecycle texts are bodies too (they reached
// PostgreSQL's triggers, whose failure took the group commit with them).
func TestFollowUpBodiesWithNULRefused(t *testing.T) {
	onSQLiteAndPostgres(t, func(t *testing.T, h *harness) {
		subject := testenv.USCC(t, "91440300MA5H00003")
		if res := h.doJSON(http.MethodPost, "/v1/admin/entries", h.adminTok, blackEntry(subject)); res.Status != http.StatusCreated {
			t.Fatalf("create entry: %d %s", res.Status, res.Body)
		}
		_, tok := h.partner("承诺", "government_procurement")
		res := h.doJSON(http.MethodPost, "/v1/checks", tok, checkBody(subject, "government_procurement"))
		if res.Status != http.StatusOK {
			t.Fatalf("check: %d %s", res.Status, res.Body)
		}
		checkID := res.json(t)["check_id"]
		in := map[string]any{"subject_id": subject, "kind": "exit", "promise": "补交\u0000材料",
			"due": time.Now().AddDate(0, 0, 15).Format(time.DateOnly), "check_id": checkID}
		problemCode(t, h.doJSON(http.MethodPost, "/v1/commitments", tok, in), http.StatusBadRequest, "control_character")
		in["promise"] = "补交材料"
		res = h.doJSON(http.MethodPost, "/v1/commitments", tok, in)
		if res.Status != http.StatusCreated {
			t.Fatalf("commitment: %d %s", res.Status, res.Body)
		}
		id := res.json(t)["id"].(string)
		problemCode(t, h.doJSON(http.MethodPost, "/v1/commitments/"+id+"/fulfil", tok, map[string]any{"note": "x\u0000"}),
			http.StatusBadRequest, "control_character")
		res = h.doJSON(http.MethodPost, "/v1/commitments/"+id+"/fulfil", tok, map[string]any{"note": "已补交"})
		if res.Status != http.StatusOK {
			t.Fatalf("fulfil after a refused one: %d %s", res.Status, res.Body)
		}
	})
}
