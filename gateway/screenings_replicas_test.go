package gateway_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestScreeningResultsOnAnotherReplica: the results of a done job that
// this replica's screenings dir does not have (another replica ran it, the
// dir not shared) are 503 screening_unavailable naming
// store.screenings_dir while their retention lasts, and 410
// screening_expired only after it. Before, a download that reached the
// wrong replica was told the results "were deleted 168h0m0s after the
// job finished", seconds after it finished.
func TestScreeningResultsOnAnotherReplica(t *testing.T) {
	sc := newRetainedScreening(t, "91110108MD", 3)
	h, bank, id := sc.h, sc.bank, sc.id
	// The files move to the disk of "another replica".
	dir := filepath.Join(h.dir, "screenings", id)
	if err := os.Rename(dir, dir+".elsewhere"); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"ndjson", "csv"} {
		m := problemCode(t, h.do(http.MethodGet, "/v1/screenings/"+id+"/results?format="+format, bank, "", nil),
			http.StatusServiceUnavailable, "screening_unavailable")
		if d, _ := m["detail"].(string); !strings.Contains(d, "store.screenings_dir") || strings.Contains(d, h.dir) {
			t.Fatalf("%s: detail %q, want store.screenings_dir named and no server path", format, d)
		}
	}
	sc.offset.Store(int64(3 * time.Hour))
	problemCode(t, h.do(http.MethodGet, "/v1/screenings/"+id+"/results", bank, "", nil), http.StatusGone, "screening_expired")
}
