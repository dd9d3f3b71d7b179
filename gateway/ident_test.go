package gateway_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credgate/credgate/policy"
)

// minorID is a person born on 15 March 2010, a minor until 15 March 2028.
const minorID = "450102201003150016"

// A person under 18 is not listed on a list requiring full capacity: a
// 422 full_capacity_required, alone or as an import line's code.
func TestFullCapacityRequiredProblem(t *testing.T) {
	h := newHarness(t)
	entry := map[string]any{
		"subject_id": minorID, "list": "nanning_black", "originating_department": "南宁市城市管理局",
		"reason": "失信事由", "legal_basis": "篇四", "decided_at": "2026-03-02T02:00:00Z", "published_at": "2026-03-02T02:00:00Z",
	}
	p := problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/entries", h.adminTok, entry), http.StatusUnprocessableEntity, "full_capacity_required")
	if p["field"] != "subject_id" || strings.Contains(p["detail"].(string), "2010") {
		t.Fatalf("problem %v", p)
	}
	nd := `{"subject_id":"` + minorID + `","list":"nanning_yellow","originating_department":"南宁市城市管理局","reason":"r","legal_basis":"b","decided_at":"2026-03-02T02:00:00Z","published_at":"2026-03-02T02:00:00Z"}`
	res := h.do(http.MethodPost, "/v1/admin/entries:import", h.adminTok, "application/x-ndjson", []byte(nd+"\n"))
	p = problemCode(t, res, http.StatusUnprocessableEntity, "import_rejected")
	lines := p["errors"].([]any)
	if len(lines) != 1 || lines[0].(map[string]any)["code"] != "full_capacity_required" {
		t.Fatalf("import lines %v", lines)
	}
	res = h.doJSON(http.MethodGet, "/v1/admin/entries?subject_id="+minorID, h.adminTok, nil)
	if n := len(res.json(t)["entries"].([]any)); n != 0 {
		t.Fatalf("%d entries written", n)
	}
}

// Identifier problems carry the precise message: the type tried and what
// failed in each; a 15-digit number is answered with its 18-digit form.
func TestIdentifierProblemDetail(t *testing.T) {
	h := newHarness(t)
	res := h.doJSON(http.MethodPost, "/v1/checks", h.adminTok, map[string]any{"subject": map[string]string{"id": "440524188001010015"}, "action": "administrative_licensing"})
	p := problemCode(t, res, http.StatusBadRequest, "invalid_subject_id")
	if d := p["detail"].(string); !strings.Contains(d, "not a resident ID number: check digit is 5, want 4; not a unified social credit code: check character is 5, want ") {
		t.Fatalf("detail %q", d)
	}
	if p["reason"] != "check_character" {
		t.Fatalf("reason %v", p["reason"])
	}
	for _, in := range []string{"440524188001010014", "110105491231002"} {
		res = h.doJSON(http.MethodPost, "/v1/checks", h.adminTok, map[string]any{"subject": map[string]string{"id": in}, "action": "administrative_licensing"})
		if res.Status != http.StatusOK {
			t.Fatalf("check of %s: %d %s", in, res.Status, res.Body)
		}
		want := in
		if len(in) == 15 {
			want = "11010519491231002X"
		}
		if got := res.json(t)["subject"].(map[string]any); got["id"] != want || got["kind"] != "person" {
			t.Fatalf("check of %s answered for %v", in, got)
		}
	}
	res = h.doJSON(http.MethodGet, "/v1/subjects/110105491231002/status", h.adminTok, nil)
	if res.Status != http.StatusOK || res.json(t)["subject"].(map[string]any)["id"] != "11010519491231002X" {
		t.Fatalf("status: %d %s", res.Status, res.Body)
	}
}

// A catalogue whose calendar does not cover the current year (here: the
// bundled catalogue without calendar.yaml, as a reviewed --catalog DIR
// might be) marks every working-day deadline provisional, in the filing
// answer, the entry and the listing of open objections.
func TestDeadlineProvisionalShown(t *testing.T) {
	dir := t.TempDir()
	src := "../policy/catalog"
	names, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if n.Name() == "calendar.yaml" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, n.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cat, err := policy.LoadCatalog(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, withCatalog(cat))
	e := h.entry(lcOrg, "safety_production_blacklist", time.Now().AddDate(0, -1, 0), nil)
	res := h.doJSON(http.MethodPost, "/v1/admin/entries/"+e["id"].(string)+"/objections", h.adminTok,
		map[string]any{"filed_by": "administrator", "grounds": "g"})
	if res.Status != http.StatusCreated {
		t.Fatalf("file: %d %s", res.Status, res.Body)
	}
	if obj := res.json(t)["objection"].(map[string]any); obj["due_provisional"] != true {
		t.Fatalf("objection %v: want due_provisional", obj)
	}
	list := h.doJSON(http.MethodGet, "/v1/admin/objections", h.adminTok, nil).json(t)["objections"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["due_provisional"] != true {
		t.Fatalf("listing %v: want due_provisional", list)
	}
	// The bundled catalogue covers this year: not provisional (unless the
	// deadline runs into next year, which 15 working days from early
	// December do not).
	h2 := newHarness(t)
	if now := time.Now(); !h2.catalog.Calendar().Covers(now.Year()) || now.Month() == time.December && now.Day() > 5 {
		t.Skip("the bundled calendar does not cover the next 15 working days")
	}
	e = h2.entry(lcOrg, "safety_production_blacklist", time.Now().AddDate(0, -1, 0), nil)
	res = h2.doJSON(http.MethodPost, "/v1/admin/entries/"+e["id"].(string)+"/objections", h2.adminTok,
		map[string]any{"filed_by": "administrator", "grounds": "g"})
	if obj := res.json(t)["objection"].(map[string]any); obj["due_provisional"] != nil {
		t.Fatalf("objection %v: not provisional", obj)
	}
}

// withCatalog serves cat instead of the bundled catalogue, as serve
// --catalog does.
func withCatalog(cat *policy.Catalog) harnessOption {
	return func(c *harnessConfig) { c.catalog = cat }
}
