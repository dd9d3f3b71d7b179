package gateway_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/credgate/credgate/internal/testenv"
)

// TestImportRefusesStoredEntries: the same file posted again (a client
// retrying an import whose answer it lost) is 422 import_rejected, each
// line invalid_entry naming the entry already stored; nothing more is
// stored.
func TestImportRefusesStoredEntries(t *testing.T) {
	h := newHarness(t)
	a := testenv.USCC(t, "91110000MA00MPRA0")
	header := "subject_id,list,originating_department,reason,legal_basis,decided_at,published_at\n"
	file := []byte(header +
		fmt.Sprintf("%s,safety_production_blacklist,应急管理部,重大事故,《安全生产法》,2026-01-01,2026-01-02\n", a) +
		fmt.Sprintf("%s,court_dishonest_debtor,某人民法院,有履行能力而拒不履行,《民事诉讼法》,2026-01-01,2026-01-02\n", a))
	res := h.do(http.MethodPost, "/v1/admin/entries:import", h.adminTok, "text/csv", file)
	if res.Status != http.StatusCreated {
		t.Fatalf("import: %d %s", res.Status, res.Body)
	}
	list := func() []any {
		return h.doJSON(http.MethodGet, "/v1/admin/entries?subject_id="+a, h.adminTok, nil).json(t)["entries"].([]any)
	}
	ids := map[string]string{} // list to the stored entry's id
	for _, e := range list() {
		m := e.(map[string]any)
		ids[m["list"].(string)] = m["id"].(string)
	}

	p := problemCode(t, h.do(http.MethodPost, "/v1/admin/entries:import", h.adminTok, "text/csv", file),
		http.StatusUnprocessableEntity, "import_rejected")
	lines, _ := p["errors"].([]any)
	if len(lines) != 2 {
		t.Fatalf("reported lines: %v", p["errors"])
	}
	for i, want := range []string{ids["safety_production_blacklist"], ids["court_dishonest_debtor"]} {
		l := lines[i].(map[string]any)
		if l["line"].(float64) != float64(i+2) || l["code"] != "invalid_entry" || !strings.Contains(l["detail"].(string), want) {
			t.Errorf("line %d: %v; want line %d, invalid_entry, naming %s", i, l, i+2, want)
		}
	}
	if n := len(list()); n != 2 {
		t.Fatalf("%d entries after the file was posted again, want 2", n)
	}
}

// TestCreateRefusesStoredEntry: an entry posted again (a create retried
// after its answer was lost) is 400 invalid_entry naming the stored one;
// nothing more is stored.
func TestCreateRefusesStoredEntry(t *testing.T) {
	h := newHarness(t)
	a := testenv.USCC(t, "91110000MA00MPRB0")
	body := map[string]any{"subject_id": a, "list": "safety_production_blacklist", "originating_department": "应急管理部",
		"reason": "重大事故", "legal_basis": "《安全生产法》", "decided_at": "2026-01-01T00:00:00+08:00", "published_at": "2026-01-02T00:00:00+08:00"}
	res := h.doJSON(http.MethodPost, "/v1/admin/entries", h.adminTok, body)
	if res.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.Status, res.Body)
	}
	id := res.json(t)["id"].(string)
	p := problemCode(t, h.doJSON(http.MethodPost, "/v1/admin/entries", h.adminTok, body), http.StatusBadRequest, "invalid_entry")
	if d, _ := p["detail"].(string); !strings.Contains(d, id) {
		t.Fatalf("the refusal does not name the stored entry %s: %v", id, p)
	}
	if n := len(h.doJSON(http.MethodGet, "/v1/admin/entries?subject_id="+a, h.adminTok, nil).json(t)["entries"].([]any)); n != 1 {
		t.Fatalf("%d entries after the create was posted again, want 1", n)
	}
}
