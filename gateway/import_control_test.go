package gateway_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/credgate/credgate/internal/testenv"
)

// TestImportRefusesControlCharacters: a CSV line whose reason holds NUL is
// the import's bad line, coded control_character (as a JSON body holding
// one is refused), and nothing is imported; PostgreSQL could not store it
// and the import failed with a 500 there.
func TestImportRefusesControlCharacters(t *testing.T) {
	h := newHarness(t)
	a := testenv.USCC(t, "91110000MA00MPRA0")
	b := testenv.USCC(t, "91110000MA00MPRB0")
	header := "subject_id,list,originating_department,reason,legal_basis,decided_at,published_at\n"
	row := func(subject, reason string) string {
		return fmt.Sprintf("%s,safety_production_blacklist,应急管理部,%s,《安全生产法》,2026-01-01,2026-01-02\n", subject, reason)
	}
	res := h.do(http.MethodPost, "/v1/admin/entries:import", h.adminTok, "text/csv", []byte(header+row(a, "重大事故")+row(b, "重大\x00事故")))
	p := problemCode(t, res, http.StatusUnprocessableEntity, "import_rejected")
	lines := p["errors"].([]any)
	if len(lines) != 1 || lines[0].(map[string]any)["line"].(float64) != 3 || lines[0].(map[string]any)["code"] != "control_character" {
		t.Fatalf("reported lines: %v", lines)
	}
	for _, s := range []string{a, b} {
		res := h.doJSON(http.MethodGet, "/v1/admin/entries?subject_id="+s, h.adminTok, nil)
		if n := len(res.json(t)["entries"].([]any)); n != 0 {
			t.Fatalf("a rejected import left %d entries for %s", n, s)
		}
	}
}
