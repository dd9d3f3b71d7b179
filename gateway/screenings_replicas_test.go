package gateway_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/testenv"
	"github.com/credgate/credgate/service"
)

// TestScreeningResultsOnAnotherReplica: the results of a done job that
// this replica's screenings dir does not have (another replica ran it, the
// dir not shared) are 503 screening_unavailable naming
// store.screenings_dir while their retention lasts, and 410
// screening_expired only after it. Before, a download that reached the
// wrong replica was told the results "were deleted 168h0m0s after the
// job finished", seconds after it finished.
func TestScreeningResultsOnAnotherReplica(t *testing.T) {
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	h := newHarness(t, withScreenings(), func(c *harnessConfig) {
		c.screeningOpts = append(c.screeningOpts, service.WithScreeningsClock(clock), service.WithScreeningsRetention(2*time.Hour))
	})
	_, bank := h.partner("bank", "bank_credit")
	var file bytes.Buffer
	for i := range 3 {
		fmt.Fprintf(&file, "{\"id\":%q}\n", testenv.USCC(t, fmt.Sprintf("91110108MD%07d", i)))
	}
	res := h.do(http.MethodPost, "/v1/screenings?action=bank_credit", bank, "application/x-ndjson", file.Bytes())
	if res.Status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", res.Status, res.Body)
	}
	id := res.json(t)["id"].(string)
	deadline := time.Now().Add(30 * time.Second)
	for h.do(http.MethodGet, "/v1/screenings/"+id, bank, "", nil).json(t)["state"] != "done" {
		if time.Now().After(deadline) {
			t.Fatal("the job is not done within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
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
	offset.Store(int64(3 * time.Hour))
	problemCode(t, h.do(http.MethodGet, "/v1/screenings/"+id+"/results", bank, "", nil), http.StatusGone, "screening_expired")
}
